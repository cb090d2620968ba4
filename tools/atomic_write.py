"""Atomic file writes shared by the tools: the file appears complete or not at all."""

import os
import tempfile


def write_atomically(path, data):
    """Write bytes to a temp file in the same folder, then rename over the target."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise

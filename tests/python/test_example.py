"""examples/saliency_figure.py runs and writes its panel."""
import os
import subprocess
import sys

import deepinside
from conftest import SOURCE_DIR


def test_saliency_figure_example(tmp_path):
    out = tmp_path / "figure.png"
    # The module this suite imported, whichever way PYTHONPATH named its folder.
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.abspath(deepinside.__file__)))
    run = subprocess.run([sys.executable, os.path.join(SOURCE_DIR, "examples", "saliency_figure.py"), "--out", str(out),
                          "--zoom", "4", "--gap", "4"], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stderr
    panel = deepinside.read_image(str(out))
    # 4 bundled images in rows, 4 columns (image and three maps) of 28 x 4 pixels, 4-pixel gaps.
    assert panel.shape == (4 * (112 + 4) + 4, 4 * (112 + 4) + 4, 3)
    assert "top-1 Ankle boot" in run.stdout

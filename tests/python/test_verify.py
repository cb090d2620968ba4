"""deepinside.verify: the certificate of `deepinside verify --json`, as a dict."""
import json
import subprocess

import numpy as np
import pytest

import deepinside
from conftest import IMAGES

# Wall-clock times differ from run to run; everything else is deterministic (seeded, same threads).
TIME_KEYS = {"seconds", "phase_seconds", "time"}


def without_times(value):
    if isinstance(value, dict):
        return {k: without_times(v) for k, v in value.items() if k not in TIME_KEYS}
    if isinstance(value, list):
        return [without_times(v) for v in value]
    return value


def test_verify_gives_the_cli_certificate(batch3, cli, model_path, tmp_path):
    x = batch3[:2]
    x_path, json_path = tmp_path / "x.npy", tmp_path / "cli.json"
    np.save(x_path, x)
    run = subprocess.run([cli, "verify", model_path, "--input", str(x_path), "--json", str(json_path), "--threads", "2"],
                         capture_output=True, text=True)
    expected = json.loads(json_path.read_text())
    report = deepinside.verify(model_path, x, threads=2, name=str(x_path), json_path=str(tmp_path / "py.json"))
    assert isinstance(report, dict)
    assert report["schema"] == "deepinside.verify/1"
    assert report["ok"] is expected["ok"] is (run.returncode == 0) is True
    assert [layer["relation"] for layer in report["layers"]] == [layer["relation"] for layer in expected["layers"]]
    assert without_times(report) == without_times(expected)
    assert without_times(json.loads((tmp_path / "py.json").read_text())) == without_times(expected)


def test_verify_options(batch3, model_path, tmp_path):
    report = deepinside.verify(model_path, batch3[:1], class_index=3, directions=1, threads=1,
                               report_dir=str(tmp_path / "report"))
    assert report["ok"] and report["class"] == 3
    assert (tmp_path / "report" / "index.html").exists()
    on_files = deepinside.verify(model_path, IMAGES[:1], directions=1)
    assert on_files["ok"] and len(on_files["images"]) == 1
    with pytest.raises(deepinside.InputError, match="tol_layer above 1e-4"):
        deepinside.verify(model_path, batch3[:1], tol_layer=1e-3)
    with pytest.raises(deepinside.InputError, match="layer needs channel"):
        deepinside.verify(model_path, batch3[:1], layer="/conv2/Conv_output_0")

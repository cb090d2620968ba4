"""Errors reach Python as deepinside.Error subclasses with the library's messages."""
import os

import numpy as np
import pytest

import deepinside


def test_hierarchy():
    assert issubclass(deepinside.Error, RuntimeError)
    for name in ["InputError", "ModelError", "UnsupportedError", "NumericalError", "IoError"]:
        assert issubclass(getattr(deepinside, name), deepinside.Error)
    assert issubclass(deepinside.InputError, ValueError)
    assert issubclass(deepinside.IoError, OSError)


def test_missing_model_names_the_file(tmp_path):
    missing = str(tmp_path / "no-such-model.onnx")
    with pytest.raises((deepinside.IoError, deepinside.InputError)) as e:
        deepinside.Network(missing)
    assert missing in str(e.value)


def test_malformed_model(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not a protobuf")
    with pytest.raises(deepinside.Error) as e:
        deepinside.Network(str(bad))
    assert str(bad) in str(e.value)


def test_bad_shape(net):
    with pytest.raises(deepinside.InputError) as e:
        net.forward(np.zeros((1, 3, 28, 28), dtype=np.float32))
    assert "must have shape [-1, 1, 28, 28]; given [1, 3, 28, 28]" in str(e.value)
    with pytest.raises(deepinside.InputError, match="has rank 4"):
        net.forward(np.zeros((28, 28), dtype=np.float32))


def test_bad_dtype(net):
    with pytest.raises(deepinside.InputError, match="complex128 is not a real number type"):
        net.forward(np.zeros((1, 1, 28, 28), dtype=np.complex128))


def test_bad_method_and_options(net, batch3):
    with pytest.raises(deepinside.InputError, match="unknown method 'backprop': choose gradient, deconvnet or guided"):
        net.saliency(batch3, methods=["gradient", "backprop"])
    with pytest.raises(deepinside.InputError, match="given twice"):
        net.saliency(batch3, methods=["guided", "guided"])
    with pytest.raises(deepinside.InputError, match="map expects"):
        net.saliency(batch3, map="sum")
    with pytest.raises(deepinside.InputError, match="nonrelu expects"):
        deepinside.Network(net.path, nonrelu="maybe")
    with pytest.raises(deepinside.InputError, match="threads is -1"):
        deepinside.Network(net.path, threads=-1)


def test_bad_class_and_tensor(net, batch3):
    with pytest.raises(deepinside.InputError) as e:
        net.saliency(batch3, classes=[10])
    assert "10" in str(e.value)
    with pytest.raises(deepinside.InputError, match="no tensor or node named 'conv9'"):
        net.saliency(batch3, layer="conv9", channel=0)


def test_non_finite_input(net):
    x = np.zeros((1, 1, 28, 28), dtype=np.float32)
    x[0, 0, 3, 7] = np.nan
    with pytest.raises(deepinside.InputError, match=r"nan at \[0, 0, 3, 7\]"):
        net.forward(x)


def test_image_errors(tmp_path):
    with pytest.raises(deepinside.IoError) as e:
        deepinside.read_image(str(tmp_path / "missing.png"))
    assert "missing.png" in str(e.value)
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    with pytest.raises(deepinside.InputError, match="junk.png"):
        deepinside.read_image(str(junk))
    with pytest.raises(deepinside.InputError, match="uint8"):
        deepinside.write_png(str(tmp_path / "x.png"), np.zeros((4, 4), dtype=np.float32))
    with pytest.raises(deepinside.IoError):
        deepinside.write_png(os.path.join(str(tmp_path), "no", "such", "dir", "x.png"), np.zeros((4, 4), dtype=np.uint8))

"""Shared fixtures of the Python module's tests (run by ctest's `python` test, see tests/CMakeLists.txt).

Paths come from the environment ctest sets (DEEPINSIDE_SOURCE_DIR, DEEPINSIDE_BIN); the module from
PYTHONPATH=<build>/python. Nothing here skips: a missing module, model or tool fails the suite.
"""
import os
import sys

import numpy as np
import pytest

SOURCE_DIR = os.environ.get("DEEPINSIDE_SOURCE_DIR",
                            os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
MODEL = os.path.join(SOURCE_DIR, "models", "fashion-mnist-convnet.onnx")
IMAGES = sorted(os.path.join(SOURCE_DIR, "models", "images", f)
                for f in os.listdir(os.path.join(SOURCE_DIR, "models", "images")) if f.endswith(".png"))

import deepinside  # noqa: E402  (from PYTHONPATH=<build>/python)


@pytest.fixture(scope="session")
def model_path():
    return MODEL


@pytest.fixture(scope="session")
def cli():
    """The deepinside executable of the same build."""
    path = os.environ.get("DEEPINSIDE_BIN", os.path.join(SOURCE_DIR, "build", "deepinside"))
    assert os.access(path, os.X_OK), f"DEEPINSIDE_BIN {path} is not an executable"
    return path


@pytest.fixture(scope="session")
def net():
    return deepinside.Network(MODEL, threads=2)


@pytest.fixture(scope="session")
def batch3():
    """Three bundled images as one float32 batch [3, 1, 28, 28], preprocessed with the model's metadata."""
    xs = [deepinside.image_to_tensor(deepinside.read_image(p), MODEL) for p in IMAGES[:3]]
    return np.concatenate(xs, axis=0)


@pytest.fixture(scope="session")
def torch_twin():
    """The bundled model in PyTorch, float64, built from the ONNX file's own weights by the training
    script's FashionConvNet (tools/train_fashion_mnist.py, model_from_onnx)."""
    import onnx
    sys.path.insert(0, os.path.join(SOURCE_DIR, "tools"))
    try:
        import train_fashion_mnist as fm
    finally:
        sys.path.pop(0)
    return fm.model_from_onnx(onnx.load(MODEL)).double()

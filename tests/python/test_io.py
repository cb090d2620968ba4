"""Images, preprocessing and heatmaps on arrays."""
import numpy as np

import deepinside
from conftest import IMAGES, MODEL


def test_read_image_and_write_png_round_trip(tmp_path):
    img = deepinside.read_image(IMAGES[0])
    assert img.dtype == np.uint8 and img.shape == (28, 28, 1)
    out = tmp_path / "copy.png"
    deepinside.write_png(str(out), img[:, :, 0])  # [H, W] is grey too
    assert np.array_equal(deepinside.read_image(str(out)), img)
    rgb = np.stack([img[:, :, 0], 255 - img[:, :, 0], np.zeros_like(img[:, :, 0])], axis=2)
    deepinside.write_png(str(out), rgb)
    assert np.array_equal(deepinside.read_image(str(out)), rgb)


def test_image_to_tensor_uses_the_metadata(net):
    img = deepinside.read_image(IMAGES[0])
    x = deepinside.image_to_tensor(img, MODEL)
    assert x.shape == (1, 1, 28, 28) and x.dtype == np.float32
    mean, std, scale = (float(net.metadata[k]) for k in ["deepinside.mean", "deepinside.std", "deepinside.scale"])
    expected = ((img[:, :, 0].astype(np.float32) * np.float32(scale) - np.float32(mean)) / np.float32(std))
    np.testing.assert_allclose(x[0, 0], expected, rtol=0, atol=1e-6)
    assert np.array_equal(deepinside.image_to_tensor(IMAGES[0], net), x)  # a file and a Network too
    raw = deepinside.image_to_tensor(img, net, mean=0, std=1, scale=1)
    assert np.array_equal(raw[0, 0], img[:, :, 0].astype(np.float32))


def test_heatmap_and_overlay():
    ramp = np.tile(np.linspace(0, 1, 16, dtype=np.float32), (8, 1))
    heat = deepinside.heatmap(ramp)
    assert heat.shape == (8, 16, 3) and heat.dtype == np.uint8
    lightness = heat.astype(int).sum(axis=2)[0]
    assert (np.diff(lightness) > 0).all()  # inferno brightens monotonically
    base = np.zeros((16, 32, 3), dtype=np.uint8)
    assert deepinside.overlay(base, ramp, alpha=1.0).shape == (16, 32, 3)

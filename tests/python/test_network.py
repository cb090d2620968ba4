"""deepinside.Network: forward against the command line, array ownership, conversions, the shape cache."""
import os
import subprocess

import numpy as np

import deepinside


def test_forward_equals_cli_forward_bit_for_bit(net, batch3, cli, model_path, tmp_path):
    x_path, y_path = tmp_path / "x.npy", tmp_path / "y.npy"
    np.save(x_path, batch3)
    subprocess.run([cli, "forward", model_path, "--input", str(x_path), "--out", str(y_path), "--threads", "2"],
                   check=True, capture_output=True)
    expected = np.load(y_path)
    ours = net.forward(batch3)
    assert ours.dtype == np.float32 and ours.shape == expected.shape == (3, 10)
    assert np.array_equal(ours, expected)


def test_outputs_own_their_buffer(net, batch3):
    """No copy out: the array's base is the capsule holding the engine's vector, and it is writeable."""
    for out in [net.forward(batch3), net.scores(batch3), net.saliency(batch3)["gradient"],
                deepinside.read_image(os.path.join(os.path.dirname(net.path), "images", "0000-ankle-boot.png"))]:
        assert type(out.base).__name__ == "PyCapsule"
        assert out.flags.writeable and out.flags.c_contiguous and out.flags.owndata is False
        out[...] = 0  # writing is allowed and touches nothing else


def test_conversions(net, batch3):
    """float64 and non-contiguous inputs are converted to float32 C order: the same result as float32."""
    expected = net.forward(batch3)
    assert np.array_equal(net.forward(batch3.astype(np.float64)), expected)
    fortran = np.asfortranarray(batch3)
    assert not fortran.flags.c_contiguous
    assert np.array_equal(net.forward(fortran), expected)
    strided = np.concatenate([batch3, batch3], axis=0)[::2]
    assert np.array_equal(net.forward(strided), net.forward(np.ascontiguousarray(strided)))
    assert net.forward(np.zeros((1, 1, 28, 28), dtype=np.uint8)).shape == (1, 10)


def test_forward_is_the_scores_here(net, batch3):
    # The bundled model ends in its logits (no softmax): the first output is the score tensor.
    assert net.score_tensor == net.output_tensor
    assert np.array_equal(net.scores(batch3), net.forward(batch3))


def test_default_class_is_top1(net, batch3):
    top1 = net.scores(batch3).argmax(axis=1)
    default = net.saliency(batch3, methods="gradient,guided")
    assert sorted(default) == ["gradient", "guided"]
    explicit = net.saliency(batch3, classes=[list(top1)], methods=["gradient", "guided"])
    for method in default:
        assert default[method].shape == (1, 3, 1, 28, 28)
        assert np.array_equal(default[method], explicit[method])


def test_one_class_per_target_matches_single_requests(net, batch3):
    """Stacked requests give what separate calls give (one stacked backward pass, same numbers)."""
    both = net.saliency(batch3, classes=[3, 5], methods=["deconvnet"])["deconvnet"]
    for k, c in enumerate([3, 5]):
        alone = net.saliency(batch3, classes=c, methods="deconvnet")["deconvnet"]
        np.testing.assert_allclose(both[k], alone[0], rtol=0, atol=1e-6 * np.abs(alone).max())


def test_layer_target_and_wrt(net, batch3):
    names = net.tensor_names
    assert names[0] == net.input_name == "input"
    conv2 = "/conv2/Conv_output_0"
    assert conv2 in names
    out = net.saliency(batch3, layer=conv2, channel=4, methods=["gradient", "deconvnet"])
    assert out["gradient"].shape == (1, 3, 1, 28, 28)
    at = net.saliency(batch3, classes=[1], wrt="/pool/MaxPool_output_0")
    assert at["gradient"].shape == (1, 3, 32, 14, 14)


def test_properties(net):
    assert net.input_shape == (None, 1, 28, 28)
    assert net.threads == 2
    assert net.labels[9] == "Ankle boot" and len(net.labels) == 10
    assert net.metadata["deepinside.channel_order"] == "RGB"
    assert "Network" in repr(net)


def test_shape_cache_keeps_the_most_recent(model_path, batch3):
    net = deepinside.Network(model_path, threads=1, max_compiled=2)
    assert net.compiled_shapes == []
    for n in [1, 2, 3, 1]:
        net.forward(batch3[:n])
    assert net.compiled_shapes == [(1, 1, 28, 28), (3, 1, 28, 28)]
    # Another batch size may take other kernels: equal within float32 rounding, not bit for bit.
    full = net.forward(batch3)
    np.testing.assert_allclose(net.forward(batch3[:2]), full[:2], rtol=0, atol=1e-6 * np.abs(full).max())

"""The module's forward and saliency signals against PyTorch in float64 on the bundled model.

The twin is the training script's FashionConvNet with the ONNX file's weights, widened to float64, fed
the very float32 input widened: PyTorch's side is exact to ~1e-16, so the differences measure the
engine's float32 arithmetic alone. Tolerance: max |engine - torch| / max |torch|, per method, class and
image, at most 1e-5. Why that bound: the signal is a chain of 4 linear layers whose longest sum has
3,136 terms (fc1); float32 rounding of such sums is ~1e-7 relative per layer (the verifier measures
<= 1e-6 per layer on this model), so 1e-5 leaves an order of magnitude for accumulation while a wrong
mask, switch or rule (errors of order 1) cannot pass. Forward scores: the same bound.
"""
import contextlib

import numpy as np
import torch
import torch.nn.functional as F

import deepinside

TOLERANCE = 1e-5
CLASSES = [9, 2]  # ankle boot (the first image's class) and pullover
METHODS = ["gradient", "deconvnet", "guided"]


@contextlib.contextmanager
def relu_rule(rule):
    """Every F.relu the twin calls follows `rule` backwards, through a backward hook on its output.

    guided: the hook replaces the signal R arriving at the ReLU's output by relu(R); autograd's own
    ReLU backward then multiplies by 1(X > 0): R * 1(R > 0) * 1(X > 0) (Springenberg et al.).
    deconvnet: the output is relu(X) in value but the identity in backward (x - x.detach() adds an
    exact 0), so after the hook the input receives relu(R), ignoring X (Zeiler and Fergus).
    """
    original = F.relu

    def relu(x, inplace=False):
        if rule == "gradient":
            return original(x)
        if rule == "guided":
            y = original(x)
        else:
            y = original(x).detach() + (x - x.detach())
        y.register_hook(lambda r: r.clamp(min=0))
        return y

    F.relu = relu
    try:
        yield
    finally:
        F.relu = original


def torch_signal(model, x, c, rule):
    """d/dx of the sum over the batch of score c, under `rule`: per image, its own score's signal."""
    x = torch.from_numpy(x.astype(np.float64)).requires_grad_(True)
    with relu_rule(rule):
        score = model(x)[:, c].sum()
        (g,) = torch.autograd.grad(score, x)
    return g.numpy()


def rel_max(a, b):
    return float(np.max(np.abs(a.astype(np.float64) - b)) / np.max(np.abs(b)))


def test_scores_match_pytorch_float64(net, batch3, torch_twin):
    ours = net.scores(batch3)
    with torch.no_grad():
        ref = torch_twin(torch.from_numpy(batch3.astype(np.float64))).numpy()
    assert ours.shape == ref.shape == (3, 10)
    assert rel_max(ours, ref) <= TOLERANCE


def test_saliency_matches_pytorch_float64(net, batch3, torch_twin):
    maps = net.saliency(batch3, classes=CLASSES, methods=METHODS)
    assert sorted(maps) == sorted(METHODS)
    errors = {}
    for method in METHODS:
        assert maps[method].shape == (len(CLASSES), 3, 1, 28, 28)
        assert maps[method].dtype == np.float32
        for k, c in enumerate(CLASSES):
            ref = torch_signal(torch_twin, batch3, c, method)
            for n in range(3):
                errors[(method, c, n)] = rel_max(maps[method][k, n], ref[n])
    print("max |engine - torch| / max |torch| per method, class, image:")
    for key, e in errors.items():
        print(f"  {key}: {e:.3g}")
    worst = max(errors, key=errors.get)
    assert errors[worst] <= TOLERANCE, f"{worst}: {errors[worst]:.3g}"


def test_rules_really_differ(net, batch3, torch_twin):
    """The comparison above is not vacuous: the three rules give different signals here."""
    maps = net.saliency(batch3, classes=CLASSES, methods=METHODS)
    for a, b in [("gradient", "deconvnet"), ("gradient", "guided"), ("deconvnet", "guided")]:
        assert rel_max(maps[a], maps[b].astype(np.float64)) > 1e-2


def test_max_abs_map_is_the_papers_map(net, batch3):
    signals = net.saliency(batch3, classes=CLASSES, methods=METHODS)
    maps = net.saliency(batch3, classes=CLASSES, methods=METHODS, map="max-abs")
    for method in METHODS:
        assert maps[method].shape == (len(CLASSES), 3, 28, 28)
        expected = np.abs(signals[method]).max(axis=2)
        np.testing.assert_array_equal(maps[method], expected)
        np.testing.assert_array_equal(deepinside.saliency_map(signals[method][0]), expected[0])

"""fastprop's fit against the benchmarks' NumPy training loop (benchmarks/numpy_mlp.py): the
loop fastprop races is also an oracle for what it computes."""
import os
import sys

import numpy as np
import pytest

import fastprop as fp

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "benchmarks"))
from numpy_mlp import NumpyMLP  # noqa: E402


@pytest.mark.parametrize("acts,loss", [
    (["sigmoid", "sigmoid"], "binary_cross_entropy"),
    (["relu", "relu", "softmax"], "softmax_cross_entropy"),
    (["tanh", "relu", "identity"], "mse"),
])
def test_fit_matches_the_numpy_loop(dtype, acts, loss):
    rng = np.random.default_rng(0)
    sizes = [6, 9, 5, 4][:len(acts) + 1]
    X = rng.normal(size=(70, sizes[0])).astype(dtype)
    if loss == "softmax_cross_entropy":
        y = rng.integers(0, sizes[-1], size=70)
    elif loss == "binary_cross_entropy":
        y = (rng.random((70, sizes[-1])) > 0.5).astype(dtype)
    else:
        y = rng.normal(size=(70, sizes[-1])).astype(dtype)
    model = fp.Sequential([fp.Dense(a, b, f) for a, b, f in zip(sizes, sizes[1:], acts)],
                          dtype=dtype, seed=1)
    net = NumpyMLP(model.get_weights(), acts, loss, dtype)
    model.fit(X, y, loss, fp.SGD(0.1), epochs=4, batch_size=16, shuffle=False)
    for _ in range(4):
        net.train_epoch(X, y, 16, 0.1)
    tol = dict(rtol=2e-4, atol=2e-6) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    for layer, W, b in zip(model.layers, net.W, net.b):
        np.testing.assert_allclose(layer.W, W, **tol)
        np.testing.assert_allclose(layer.b, b, **tol)

"""Dropout: inverted scaling, off at predict time, seeded masks, and training equal to NumPy
backprop with the same masks."""
import numpy as np
import pytest

import fastprop as fp
from fastprop import _kernels
import reference as ref


def net(dtype="float64", rate=0.3, seed=0):
    return fp.Sequential([fp.Dense(6, 20, "tanh"), fp.Dropout(rate), fp.Dense(20, 12, "relu"),
                          fp.Dropout(rate / 2), fp.Dense(12, 3, "softmax")], dtype=dtype, seed=seed)


def data(n=48, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 6)), rng.integers(0, 3, size=n)


ACTS = ["tanh", "relu", "softmax"]


def numpy_step(model, weights, X, y, step, lr):
    """One SGD step of NumPy backprop with the masks the model draws at training step `step`
    (the masks come from fastprop's generator; everything else is the oracle's)."""
    A, As, Zs, masks = X, [X], [], []
    for i, ((Wi, bi), act) in enumerate(zip(weights, ACTS)):
        Z, A = ref.forward(A, Wi, bi, act)
        Zs.append(Z)
        rate = model.layers[i].dropout_rate
        if rate:
            M, D = np.empty_like(A), np.empty_like(A)
            key = _kernels._dropout_key(model._dropout_seed, step, i)
            _kernels._dropout(np.ascontiguousarray(A), M, D, key, rate)
            masks.append(M)
            A = A * M
        else:
            masks.append(None)
        As.append(A)
    value, dZ = ref.loss_and_output_delta("softmax_cross_entropy", Zs[-1], As[-1], y, "softmax")
    grads = [None] * 3
    for l in (2, 1, 0):
        grads[l] = ref.weight_gradient(As[l], dZ)
        if l:
            dZ = (dZ @ weights[l][0].T) * masks[l - 1] * ref.derivative(Zs[l - 1], ACTS[l - 1])
    return [(W - lr * dW, b - lr * db) for (W, b), (dW, db) in zip(weights, grads)], value


def test_fit_with_dropout_matches_numpy_backprop_with_the_same_masks(dtype):
    X, y = data()
    model = net(dtype)
    weights = [(W.astype(np.float64), b.astype(np.float64)) for W, b in model.get_weights()]
    model.fit(X, y, "softmax_cross_entropy", fp.SGD(0.1), epochs=3, batch_size=16, shuffle=False)
    step = 0
    for _ in range(3):
        for lo in range(0, 48, 16):
            weights, _ = numpy_step(model, weights, X[lo:lo + 16], y[lo:lo + 16], step, 0.1)
            step += 1
    tol = dict(rtol=2e-4, atol=2e-6) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(model.params, ref.flatten(weights), **tol)
    assert model._dropout_step == 9
    # and dropout changed the training: without it the weights differ
    c = fp.Sequential([fp.Dense(6, 20, "tanh"), fp.Dense(20, 12, "relu"),
                       fp.Dense(12, 3, "softmax")], dtype=dtype)
    c.params[...] = net(dtype).params
    c.fit(X, y, "softmax_cross_entropy", fp.SGD(0.1), epochs=3, batch_size=16, shuffle=False)
    assert not np.allclose(c.params, model.params)


def test_one_step_equals_numpy_backprop_with_the_same_masks():
    X, y = data(n=10)
    model = net("float64", rate=0.4)
    expected, value = numpy_step(model, model.get_weights(), X, y, 0, 0.5)
    got = model.train_step(X, y, "softmax_cross_entropy", fp.SGD(0.5))
    assert got == pytest.approx(value, rel=1e-12)
    for layer, (W, b) in zip(model.layers, expected):
        np.testing.assert_allclose(layer.W, W, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(layer.b, b, rtol=1e-12, atol=1e-14)


def test_masks_drop_the_rate_and_scale_the_rest():
    A = np.ones((2000, 50))
    M, D = np.empty_like(A), np.empty_like(A)
    _kernels._dropout(A, M, D, _kernels._dropout_key(5, 3, 1), 0.25)
    assert (M == 0).mean() == pytest.approx(0.25, abs=0.01)
    np.testing.assert_allclose(np.unique(M), [0.0, 1 / 0.75])
    assert D.mean() == pytest.approx(1.0, abs=0.01)  # inverted scaling keeps the expectation
    M2 = np.empty_like(A)
    _kernels._dropout(A, M2, D, _kernels._dropout_key(5, 4, 1), 0.25)
    assert not np.array_equal(M, M2)  # a new mask every step


def test_dropout_is_off_at_predict_and_evaluate():
    X, y = data()
    model = net()
    plain = fp.Sequential([fp.Dense(6, 20, "tanh"), fp.Dense(20, 12, "relu"),
                           fp.Dense(12, 3, "softmax")], dtype="float64")
    plain.params[...] = model.params
    np.testing.assert_array_equal(model.predict(X), plain.predict(X))
    assert model.evaluate(X, y, "softmax_cross_entropy") == plain.evaluate(X, y, "softmax_cross_entropy")
    assert "Dropout(0.3)" in repr(model) and model.layers[0].dropout_rate == 0.3


def test_dropout_placement_and_rate_are_checked():
    with pytest.raises(ValueError, match=r"layers\[0\]: a Dropout must follow a Dense layer"):
        fp.Sequential([fp.Dropout(0.5), fp.Dense(2, 1)])
    with pytest.raises(ValueError, match=r"layers\[1\]: a Dropout cannot follow the output layer"):
        fp.Sequential([fp.Dense(2, 1), fp.Dropout(0.5)])
    with pytest.raises(ValueError, match=r"rate: expected a number in \[0, 1\)"):
        fp.Dropout(1.0)


def test_save_load_resumes_with_the_same_masks(tmp_path):
    X, y = data()
    model = net("float32")
    model.fit(X, y, "softmax_cross_entropy", fp.Adam(0.01), epochs=2, batch_size=16)
    model.save(tmp_path / "m.npz")
    loaded = fp.load(tmp_path / "m.npz")
    assert repr(loaded) == repr(model)
    model.fit(X, y, "softmax_cross_entropy", model.optimizer, epochs=2, batch_size=16)
    loaded.fit(X, y, "softmax_cross_entropy", loaded.optimizer, epochs=2, batch_size=16)
    np.testing.assert_array_equal(loaded.params, model.params)

"""Backpropagation's gradients against central differences in float64, for every activation
and loss; and fp.gradcheck itself, which must pass on right gradients and fail on wrong ones."""
import numpy as np
import pytest

import fastprop as fp
import reference as ref

HIDDEN = ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "gelu", "gelu_tanh", "silu", "elu",
          "softplus", "mish"]
OUTPUT_LOSS = [("identity", "mse"), ("sigmoid", "mse"), ("tanh", "half_squared_error"),
               ("relu", "mse"), ("leaky_relu", "half_squared_error"),
               ("sigmoid", "binary_cross_entropy"), ("softmax", "softmax_cross_entropy"),
               ("identity", "mae"), ("tanh", "huber"), ("identity", "huber"),
               ("sigmoid", "multilabel_binary_cross_entropy"), ("gelu", "mse"),
               ("gelu_tanh", "half_squared_error"), ("silu", "huber"), ("elu", "mae"),
               ("softplus", "mse"), ("mish", "half_squared_error")]


def make(hidden, out_act, loss, seed=0, n=12, sizes=(4, 6, 5, 3)):
    rng = np.random.default_rng(seed)
    layers = [fp.Dense(sizes[0], sizes[1], hidden), fp.Dense(sizes[1], sizes[2], hidden),
              fp.Dense(sizes[2], sizes[3], out_act)]
    model = fp.Sequential(layers, dtype="float64", seed=seed)
    for l in model.layers:  # non-zero biases, so that every term of the chain rule is exercised
        l.b = rng.normal(scale=0.3, size=l.n_out)
    X = rng.normal(size=(n, sizes[0]))
    if loss in ("binary_cross_entropy", "multilabel_binary_cross_entropy"):
        y = (rng.random((n, sizes[3])) > 0.5).astype(float)
    elif loss == "huber":
        y = rng.normal(scale=2.0, size=(n, sizes[3]))  # both sides of |r| = 1
    elif loss == "softmax_cross_entropy":
        y = rng.integers(0, sizes[3], size=n)
    else:
        y = rng.normal(size=(n, sizes[3]))
    return model, X, y


def central_differences(model, X, y, loss, eps=1e-6):
    p = model.params
    g = np.empty_like(p)
    for i in range(p.size):
        orig = p[i]
        p[i] = orig + eps
        plus = model.evaluate(X, y, loss)["loss"]
        p[i] = orig - eps
        minus = model.evaluate(X, y, loss)["loss"]
        p[i] = orig
        g[i] = (plus - minus) / (2 * eps)
    return g


@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("out_act,loss", OUTPUT_LOSS)
def test_gradients_match_central_differences(hidden, out_act, loss):
    model, X, y = make(hidden, out_act, loss)
    value, grads = model.loss_and_gradients(X, y, loss)
    analytic = np.concatenate([np.concatenate([dW.ravel(), db]) for dW, db in grads])
    numeric = central_differences(model, X, y, loss)
    assert np.abs(analytic).max() > 1e-3  # a gradient worth checking
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-8)
    # and the NumPy reference agrees on the value and every gradient
    ref_value, ref_grads, _ = ref.backprop(model.get_weights(), [l.activation for l in model.layers],
                                           X, y.astype(int) if y.ndim == 1 else y, loss)
    np.testing.assert_allclose(value, ref_value, rtol=1e-12)
    for (dW, db), (rdW, rdb) in zip(grads, ref_grads):
        np.testing.assert_allclose(dW, rdW, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(db, rdb, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("out_act,loss", OUTPUT_LOSS)
def test_gradcheck_passes(dtype, out_act, loss):
    model, X, y = make("tanh", out_act, loss, seed=3)
    model = model.copy(dtype=dtype)
    result = fp.gradcheck(model, X, y, loss=loss)
    assert result.ok, result
    assert result.n_checked == model.n_params
    assert result.max_abs_error < 1e-7


def test_gradcheck_catches_a_wrong_gradient(monkeypatch):
    model, X, y = make("sigmoid", "identity", "mse", seed=1)
    real = fp.Sequential.loss_and_gradients

    def off_by_a_bit(self, X, y, loss):
        value, grads = real(self, X, y, loss)
        self.grads[0] *= 1.001  # a 0.1% error in one entry: layers[0].W[0, 0]
        return value, grads

    monkeypatch.setattr(fp.Sequential, "loss_and_gradients", off_by_a_bit)
    result = fp.gradcheck(model, X, y, loss="mse")
    assert not result.ok
    assert result.worst.endswith("W[0, 0]")
    assert result.max_rel_error == pytest.approx(1e-3, rel=0.05)


def test_gradcheck_subset_and_repr():
    model, X, y = make("relu", "identity", "mse", seed=2)
    result = fp.gradcheck(model, X, y, loss="mse", max_params=10)
    assert result.ok and result.n_checked == 10
    assert "GradcheckResult(ok=True" in repr(result)

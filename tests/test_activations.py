"""The smooth activations (gelu, gelu_tanh, silu, elu, softplus, mish): their values and derivatives
within a few units in the last place (ulp) of an exact reference (mpmath at 40 digits), in both
dtypes; against PyTorch's modules and autograd through small networks; and everywhere an
activation goes: fit, predict, explain, gradcheck, save and load, the torch state dict, ONNX.

The bounds, in units in the last place of the correctly rounded value, over the whole line
(denormal results aside):
- gelu: 4 ulp (the normal CDF's tail included, where 1 + erf would cancel);
- silu, elu, softplus: 3 ulp;
- mish: 4 ulp (e = exp(v) carries its own error into v e (e + 2) / (e^2 + 2e + 2));
- gelu_tanh: 3 ulp times its condition number max(1, |v f'(v) / f(v)|): torch's formula rounds
  v + 0.044715 v^3 first, and f amplifies that rounding by its condition (about 140 at v = -8).
Derivatives: within 4 ulp of the larger of |f'(v)| and the size of its terms (gelu' = Phi +
v phi and silu' = s + v s (1 - s) cross zero, where no relative bound can hold), times the
condition number for gelu_tanh; mish' = t + v (1 - t^2) sigmoid(v) within 6 ulp (each term
carries exp's error and four roundings; measured 5.2 in float32, 4.6 in float64).
"""
import numpy as np
import pytest

import fastprop as fp
from fastprop import _kernels
import reference as ref

mp = pytest.importorskip("mpmath")
mp.mp.dps = 40

NEW = ["gelu", "gelu_tanh", "silu", "elu", "softplus", "mish"]
K = mp.sqrt(2 / mp.pi)


def _exact(name, v):
    """(f(v), f'(v), the size of f''s terms, the condition number of f at v), exactly."""
    if name == "gelu":
        phi, dens = mp.ncdf(v), mp.npdf(v)
        return v * phi, phi + v * dens, abs(phi) + abs(v * dens), 1
    if name in ("gelu_tanh", "silu"):
        y, dy = ((2 * K * (v + mp.mpf("0.044715") * v ** 3), 2 * K * (1 + 3 * mp.mpf("0.044715")
                                                                        * v * v))
                 if name == "gelu_tanh" else (v, mp.mpf(1)))
        s = 1 / (1 + mp.exp(-y))
        d = s + v * s * (1 - s) * dy
        cond = max(1, abs(v * d / (v * s))) if v != 0 and name == "gelu_tanh" else 1
        return v * s, d, abs(s) + abs(v * s * (1 - s) * dy), cond
    if name == "elu":
        return (v, mp.mpf(1), 1, 1) if v > 0 else (mp.expm1(v), mp.exp(v), mp.exp(v), 1)
    if name == "softplus":
        if v > 20:
            return v, mp.mpf(1), 1, 1
        s = 1 / (1 + mp.exp(-v))
        return mp.log1p(mp.exp(v)), s, s, 1
    if name == "mish":  # v tanh(softplus(v)); mish' = t + v (1 - t^2) sigmoid(v)
        t, s = mp.tanh(mp.log1p(mp.exp(v))), 1 / (1 + mp.exp(-v))
        return v * t, t + v * (1 - t * t) * s, abs(t) + abs(v * (1 - t * t) * s), 1
    raise ValueError(name)


BOUND = {"gelu": 4, "gelu_tanh": 3, "silu": 3, "elu": 3, "softplus": 3, "mish": 4}
D_BOUND = {"mish": 6}  # the derivatives' bound where it is not 4


def _grid(dtype):
    rng = np.random.default_rng(0)
    top = 40 if dtype == np.float64 else 14
    v = np.concatenate([np.linspace(-top, top, 321), rng.normal(scale=3, size=200),
                        np.linspace(-1, 1, 81), [1e-6, -1e-6, 1e-12, -1e-12, 19.99, 20.01]])
    return v.astype(dtype)


def _run(name, v):
    code = fp.ACTIVATIONS[name]
    Z = v.reshape(1, -1).copy()
    A = np.empty_like(Z)
    _kernels._bias_activation(Z, A, np.zeros(Z.shape[1], Z.dtype), code, 1.0)
    d = np.ones_like(Z)
    _kernels._activation_backward(d, A, Z, code, 1.0)
    return A.ravel(), d.ravel()


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", NEW)
def test_within_a_few_ulp_of_the_exact_values(name, dtype):
    v = _grid(dtype)
    a, d = _run(name, v)
    tiny = np.finfo(dtype).tiny * 2 ** 24  # results this small are denormal or nearly
    worst_f = worst_d = 0.0
    for vi, ai, di in zip(v, a, d):
        f, df, size, cond = _exact(name, mp.mpf(float(vi)))
        if abs(f) > tiny:
            ulp = np.spacing(abs(dtype(float(f))))
            err = float(abs(mp.mpf(float(ai)) - f)) / float(ulp) / float(cond)
            worst_f = max(worst_f, err)
            assert err <= BOUND[name], f"{name}({vi!r}) = {ai!r}, exact {mp.nstr(f, 20)}: {err} ulp"
        if max(abs(df), size) > tiny:
            ulp = np.spacing(dtype(float(max(abs(df), size))))
            err = float(abs(mp.mpf(float(di)) - df)) / float(ulp) / float(cond)
            worst_d = max(worst_d, err)
            assert err <= D_BOUND.get(name, 4), \
                f"{name}'({vi!r}) = {di!r}, exact {mp.nstr(df, 20)}: {err} ulp"
    assert worst_f > 0  # the comparison compared something


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_the_special_points(dtype):
    # NaN stays NaN; at 0, 25 and -200 the values and slopes of calculus (and torch)
    v = np.array([np.nan, 0.0, 25.0, -200.0], dtype)
    at_zero = {"gelu": (0, 0.5), "gelu_tanh": (0, 0.5), "silu": (0, 0.5), "elu": (0, 1),
               "softplus": (np.log(2), 0.5), "mish": (0, 0.6)}  # mish'(0) = tanh(log 2) = 3/5
    for name in NEW:
        a, d = _run(name, v)
        assert np.isnan(a[0]) and np.isnan(d[0]), name
        np.testing.assert_allclose([a[1], d[1]], at_zero[name], rtol=1e-7, err_msg=name)
        np.testing.assert_allclose([a[2], d[2]], [25, 1], rtol=1e-9, err_msg=name)
        np.testing.assert_allclose(a[3], ref.activation(np.array([-200.0]), name)[0], rtol=1e-6,
                                   atol=1e-30, err_msg=name)
        assert abs(d[3]) < 1e-30, name
    a, d = _run("softplus", np.array([20.5, 15], dtype))  # torch's threshold: z above 20
    assert a[0] == dtype(20.5) and d[0] == 1 and d[1] < 1


def test_the_table_and_the_engine_agree_on_which_layers_keep_z():
    assert {n for n, r in fp.activations.TABLE.items() if r.needs_z} == set(NEW)
    model = fp.Sequential([fp.Dense(3, 4, "relu"), fp.Dense(4, 4, "gelu"), fp.Dense(4, 4, "tanh"),
                           fp.Dense(4, 2, "identity")])
    model.predict(np.ones((2, 3)))
    # relu and tanh keep no Z; gelu does, and the output always (its logits)
    assert model._engine.keeps_z == [False, True, False, True]


def test_rows_name_initializers_parameters_and_modules():
    rows = fp.activations.TABLE
    assert rows["elu"].param == "alpha" and rows["leaky_relu"].param == "negative_slope"
    assert fp.activations.activation_row("swish").name == "silu"
    assert {n for n, r in rows.items() if r.init.startswith("he")} == \
        {"relu", "leaky_relu", "gelu", "gelu_tanh", "silu", "elu", "softplus", "mish"}
    assert fp.Dense(3, 2, "gelu").init == "he_uniform"
    assert repr(fp.Dense(3, 2, "elu", alpha=0.5)) == "Dense(3, 2, activation='elu', alpha=0.5)"


def _net(hidden, out="identity", alpha=0.7, dtype="float64", seed=0):
    rng = np.random.default_rng(seed)
    model = fp.Sequential([fp.Dense(5, 8, hidden, alpha=alpha), fp.Dense(8, 6, hidden, alpha=alpha),
                           fp.Dense(6, 3, out, alpha=alpha)], dtype=dtype, seed=seed)
    for layer in model.layers:
        layer.b = rng.normal(scale=0.5, size=layer.n_out)
    return model


@pytest.mark.parametrize("hidden", NEW)
def test_gradients_against_the_numpy_oracle_and_central_differences(hidden):
    model = _net(hidden, out=hidden)
    rng = np.random.default_rng(1)
    X, y = rng.normal(scale=2, size=(20, 5)), rng.normal(size=(20, 3))
    value, grads = model.loss_and_gradients(X, y, "mse")
    ref_value, ref_grads, out = ref.backprop(model.get_weights(), [hidden] * 3, X, y, "mse",
                                             alpha=0.7)
    np.testing.assert_allclose(model.predict(X), out, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(value, ref_value, rtol=1e-13)
    for (dW, db), (rdW, rdb) in zip(grads, ref_grads):
        np.testing.assert_allclose(dW, rdW, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(db, rdb, rtol=1e-10, atol=1e-14)
    result = fp.gradcheck(model, X, y, loss="mse")
    assert result.ok and result.max_abs_error < 1e-8, result


torch = None


def _torch():
    global torch
    torch = pytest.importorskip("torch")
    return torch


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("hidden", NEW)
def test_against_torch_autograd(hidden, dtype):
    _torch()
    from fastprop.torch_interop import to_module
    model = _net(hidden, out="sigmoid", dtype=dtype)
    rng = np.random.default_rng(2)
    X = rng.normal(scale=2, size=(16, 5)).astype(dtype)
    y = (rng.random((16, 3)) > 0.5).astype(dtype)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == "float32" else dict(rtol=1e-12, atol=1e-14)
    net = to_module(model)
    Xt = torch.from_numpy(X).requires_grad_(True)
    out = net(Xt)
    np.testing.assert_allclose(model.predict(X), out.detach().numpy(), **tol)
    # gradients through the logits, with the mean squared error of the last hidden layer's
    # output: inputs and every weight
    value, grads = model.loss_and_gradients(X, y, "binary_cross_entropy")
    logits = net[:-1](Xt)
    t = torch.nn.BCEWithLogitsLoss()(logits, torch.from_numpy(y))
    t.backward()
    np.testing.assert_allclose(value, t.item(), **tol)
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    for (dW, db), lin in zip(grads, linears):
        np.testing.assert_allclose(dW, lin.weight.grad.numpy().T, **tol)
        np.testing.assert_allclose(db, lin.bias.grad.numpy(), **tol)
    # the input gradient, from the engine's trace: dL/da_0 = delta_1 W_1^T
    trace = model.explain(X, y, "binary_cross_entropy")
    dX = trace[0].delta @ model.layers[0].W.T
    np.testing.assert_allclose(dX, Xt.grad.numpy(), **tol)


def test_elu_alpha_reaches_torch_and_onnx_and_survives_save_and_load(tmp_path):
    _torch()
    from fastprop.torch_interop import to_module
    model = fp.Sequential([fp.Dense(4, 5, "elu", alpha=0.3), fp.Dense(5, 2, "elu", alpha=2.0)],
                          dtype="float64", seed=3)
    X = np.random.default_rng(0).normal(scale=2, size=(9, 4))
    net = to_module(model)
    assert net[1].alpha == 0.3 and net[3].alpha == 2.0
    np.testing.assert_allclose(model.predict(X), net(torch.from_numpy(X)).detach().numpy(),
                               rtol=1e-13)
    path = tmp_path / "m.fastprop"
    model.save(path)
    loaded = fp.load(path)
    assert [l.alpha for l in loaded.layers] == [0.3, 2.0]
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    other = fp.Sequential([fp.Dense(4, 5, "elu"), fp.Dense(5, 2, "elu", alpha=2.0)],
                          dtype="float64")
    other.from_torch_state_dict(net.state_dict())
    assert not np.allclose(other.predict(X), model.predict(X))  # alpha is architecture


def test_a_file_without_alpha_reads_as_one():
    from fastprop import io
    specs, _, _ = io._architecture({"layers": [{"n_in": 3, "n_out": 2, "activation": "elu",
                                                "negative_slope": 0.01, "init": "he_uniform"}]})
    assert specs[0].alpha == 1.0 and specs[0].activation_param == 1.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("hidden", NEW)
def test_onnx_export_of_each(hidden, dtype):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from fastprop.onnx import to_onnx
    model = _net(hidden, out=hidden, dtype=np.dtype(dtype).name, alpha=0.6)
    X = np.random.default_rng(0).normal(scale=4, size=(50, 5)).astype(dtype)
    X[0, :] = 30  # softplus beyond its threshold
    graph = to_onnx(model)
    if hidden == "gelu" and dtype == np.float64:
        # onnxruntime's CPU provider has no float64 Erf (the ONNX standard has): onnx's own
        # reference runtime runs the same graph
        # (whose float64 Erf is good to about 1e-8)
        from onnx.reference import ReferenceEvaluator
        got = ReferenceEvaluator(graph).run(None, {"X": X})[0]
        np.testing.assert_allclose(got, model.predict(X), rtol=1e-7, atol=1e-7)
        return
    else:
        session = ort.InferenceSession(graph.SerializeToString(),
                                       providers=["CPUExecutionProvider"])
        got = session.run(None, {"X": X})[0]
    tol = dict(rtol=2e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(got, model.predict(X), **tol)


@pytest.mark.parametrize("hidden", NEW)
def test_fit_predict_explain_and_copies(hidden):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    y = (X[:, 0] * X[:, 1] > 0).astype(float)
    model = fp.Sequential([fp.Dense(2, 16, hidden), fp.Dropout(0.1), fp.Dense(16, 1, "sigmoid")],
                          seed=0)
    history = model.fit(X, y, loss="binary_cross_entropy", epochs=30, batch_size=32,
                        optimizer=fp.Adam(lr=0.01))
    assert history.loss[-1] < 0.8 * history.loss[0]
    trace = model.explain(X[:5], y[:5], "binary_cross_entropy")
    np.testing.assert_allclose(trace[0].a, ref.activation(trace[0].u.astype(np.float64), hidden),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(trace[0].fprime,
                               ref.derivative(trace[0].u.astype(np.float64), hidden),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(trace[0].delta, trace[0].dA * trace[0].fprime, rtol=1e-5,
                               atol=1e-7)
    clone = model.copy(dtype="float64")
    np.testing.assert_allclose(clone.predict(X), model.predict(X), rtol=1e-5, atol=1e-6)

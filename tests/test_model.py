"""The Python API: flat buffers and views, weights, fit and its history, explain, repr, demo."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import fastprop as fp
import reference as ref

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def small(dtype="float64", seed=0):
    return fp.Sequential([fp.Dense(3, 5, "tanh"), fp.Dense(5, 4, "relu"), fp.Dense(4, 2, "identity")],
                         dtype=dtype, seed=seed)


def test_parameters_live_in_one_flat_buffer(dtype):
    model = small(dtype)
    assert model.params.dtype == dtype and model.params.size == 3 * 5 + 5 + 5 * 4 + 4 + 4 * 2 + 2
    for layer in model.layers:
        assert np.shares_memory(layer.W, model.params) and np.shares_memory(layer.b, model.params)
        assert np.shares_memory(layer.dW, model.grads)
    # writing through a view changes the buffer, and the buffer changes the view
    model.layers[1].W[2, 3] = 7.0
    assert model.params[3 * 5 + 5 + 2 * 4 + 3] == 7.0
    model.params[-1] = -3.0
    assert model.layers[2].b[1] == -3.0
    # gradients land in the flat gradient buffer, in the same layout
    X = np.random.default_rng(0).normal(size=(4, 3))
    _, grads = model.loss_and_gradients(X, np.zeros((4, 2)), "mse")
    flat = np.concatenate([np.concatenate([dW.ravel(), db]) for dW, db in grads])
    np.testing.assert_array_equal(model.grads, flat)


def test_initialization_is_seeded_and_scaled():
    a, b, c = small(seed=1), small(seed=1), small(seed=2)
    np.testing.assert_array_equal(a.params, b.params)
    assert not np.array_equal(a.params, c.params)
    big = fp.Sequential([fp.Dense(400, 300, "relu"), fp.Dense(300, 10, "tanh")], seed=0)
    # He uniform: limit sqrt(6 / n_in); Glorot uniform: sqrt(6 / (n_in + n_out)); biases zero
    assert np.abs(big.layers[0].W).max() <= np.sqrt(6 / 400)
    assert big.layers[0].W.std() == pytest.approx(np.sqrt(2 / 400), rel=0.02)
    assert big.layers[1].W.std() == pytest.approx(np.sqrt(2 / 310), rel=0.05)
    assert not big.layers[0].b.any()


def test_get_set_weights_and_copy():
    model = small()
    weights = model.get_weights()
    other = small(seed=5)
    other.set_weights(weights)
    np.testing.assert_array_equal(other.params, model.params)
    weights[0][0][0, 0] = 99.0  # get_weights returns copies
    assert model.layers[0].W[0, 0] != 99.0
    f32 = model.copy(dtype="float32")
    assert f32.dtype == np.float32 and not np.shares_memory(f32.params, model.params)
    np.testing.assert_allclose(f32.params, model.params, rtol=1e-7)


def test_predict_matches_reference(dtype):
    model = small(dtype)
    X = np.random.default_rng(1).normal(size=(13, 3))
    _, _, out = ref.backprop(model.get_weights(), [l.activation for l in model.layers], X,
                             np.zeros((13, 2)), "mse")
    np.testing.assert_allclose(model.predict(X), out, rtol=1e-5 if dtype == np.float32 else 1e-12,
                               atol=1e-6 if dtype == np.float32 else 1e-14)
    np.testing.assert_array_equal(model(X), model.predict(X))


def test_fit_matches_the_oracle_with_a_smaller_last_batch(dtype):
    # 10 samples in batches of 4: steps of 4, 4 and 2 samples; the last batch is not dropped
    rng = np.random.default_rng(2)
    X = rng.normal(size=(10, 3))
    y = rng.normal(size=(10, 2))
    model, stepwise = small(dtype), small(dtype)
    start = model.get_weights()
    history = model.fit(X, y, "mse", optimizer=fp.SGD(0.1), epochs=3, batch_size=4, seed=7)
    batches = ref.epoch_batches(10, 4, 3, seed=7)
    assert [len(b) for b in batches] == [4, 4, 2] * 3
    expected, losses = ref.train(start, ["tanh", "relu", "identity"], X, y, "mse", batches,
                                 ref.Optimizer("SGD", lr=0.1))
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(model.params, ref.flatten(expected), **tol)
    epoch_losses = [(4 * losses[3 * e] + 4 * losses[3 * e + 1] + 2 * losses[3 * e + 2]) / 10
                    for e in range(3)]
    np.testing.assert_allclose(history.loss, epoch_losses, **tol)
    assert history.epoch == [1, 2, 3] and len(history.seconds) == 3
    assert all(s > 0 for s in history.samples_per_sec)
    assert history.accuracy == []  # a regression loss has no accuracy
    # train_step takes a step exactly as fit does: the same bits
    opt = fp.SGD(0.1)
    for idx in batches:
        stepwise.train_step(X[idx], y[idx], "mse", opt)
    np.testing.assert_array_equal(stepwise.params, model.params)


def test_fit_learns_and_reports_accuracy():
    X, y = fp.datasets.make_spirals(n_samples=1500, noise=0.2, seed=1)
    model = fp.Sequential([fp.Dense(2, 32, "relu"), fp.Dense(32, 32, "relu"),
                           fp.Dense(32, 3, "softmax")], seed=0)
    history = model.fit(X, y, "softmax_cross_entropy", optimizer=fp.SGD(0.1), epochs=25,
                        batch_size=32, seed=0)
    assert history.loss[-1] < 0.5 * history.loss[0]
    assert history.accuracy[-1] > 0.9
    result = model.evaluate(X, y, "softmax_cross_entropy")
    assert result["accuracy"] == pytest.approx(np.mean(model.predict(X).argmax(1) == y))
    # predicted probabilities are a softmax: rows sum to one
    np.testing.assert_allclose(model.predict(X[:5]).sum(axis=1), 1.0, rtol=1e-6)
    d = history.as_dict()
    assert set(d) == {"epoch", "loss", "accuracy", "lr", "seconds", "samples_per_sec"}
    assert len(d["loss"]) == 25


def test_fit_is_reproducible_with_a_seed():
    X, y = fp.datasets.make_seed_dataset()
    runs = []
    for _ in range(2):
        model = fp.Sequential([fp.Dense(2, 4, "sigmoid"), fp.Dense(4, 1, "sigmoid")], seed=42)
        model.fit(X, y, "bce", optimizer=fp.SGD(0.5), epochs=5, batch_size=16)
        runs.append(model.params.copy())
    np.testing.assert_array_equal(runs[0], runs[1])


def test_explain_matches_loss_and_gradients():
    model = small()
    X = np.random.default_rng(3).normal(size=(2, 3))
    y = np.random.default_rng(4).normal(size=(2, 2))
    trace = model.explain(X, y, "mse")
    loss, grads = model.loss_and_gradients(X, y, "mse")
    assert trace.loss == loss and len(trace) == 3
    for t, (dW, db) in zip(trace.layers, grads):
        np.testing.assert_allclose(t.dW, dW, rtol=1e-12)
        np.testing.assert_allclose(t.db, db, rtol=1e-12)
        np.testing.assert_allclose(t.delta, t.dA * t.fprime, rtol=1e-12)   # delta = dL/da * f'(u)
    # u and a chain: a_l = f(u_l), u_{l+1} = a_l W + b
    np.testing.assert_allclose(trace[1].u, trace[0].a @ model.layers[1].W + model.layers[1].b)
    np.testing.assert_allclose(trace[0].a, np.tanh(trace[0].u))
    text = str(trace)
    assert "delta = dL/du" in text and "mse = " in text and len(text.splitlines()) == 7


def test_explain_of_the_seed_scalar_network_prints_its_numbers():
    model = fp.Sequential([fp.Dense(1, 1), fp.Dense(1, 1), fp.Dense(1, 1, "tanh"), fp.Dense(1, 1)],
                          dtype="float64")
    model.set_weights([([[w]], [0.0]) for w in (1.0, 2.0, 1.0, 1.0)])
    text = str(model.explain([[2.0]], [[10.0]], "half_squared_error"))
    assert "half_squared_error = 40.506" in text
    row3 = [line for line in text.splitlines() if line.startswith("3 ")][0]
    assert row3.split()[1:] == ["tanh", "4", "0.999329", "0.00134095", "-9.00067", "-0.0120695",
                                "-0.0482778", "-0.0120695"]


def test_explain_with_a_loss_from_the_logits():
    model = fp.Sequential([fp.Dense(2, 3, "relu"), fp.Dense(3, 2, "softmax")], seed=0)
    trace = model.explain([[1.0, -1.0]], [1], "softmax_cross_entropy")
    p = model.predict([[1.0, -1.0]])[0]
    np.testing.assert_allclose(trace[1].delta[0], p - [0, 1], rtol=1e-6)
    assert trace[1].fprime is None and "softmax_cross_entropy is computed from the output's logits u" in str(trace)


def test_every_public_class_has_a_repr():
    model = small()
    X = np.ones((2, 3))
    assert repr(model).startswith("Sequential([") and "Dense(3, 5, activation='tanh')" in repr(model)
    assert repr(fp.SGD(0.1)) == "SGD(lr=0.1)"
    assert repr(fp.Dense(2, 3, "leaky_relu")) == "Dense(2, 3, activation='leaky_relu', negative_slope=0.01)"
    h = model.fit(X, np.ones((2, 2)), "mse", epochs=2)
    assert re.match(r"History\(epochs=2, loss=[0-9.e-]+\)", repr(h))
    assert repr(model.explain(X, np.ones((2, 2)), "mse")).startswith("Trace(loss='mse'")
    assert repr(fp.gradcheck(model, X, np.ones((2, 2)))).startswith("GradcheckResult(ok=True")


def test_readme_usage_runs():
    text = open(os.path.join(ROOT, "README.md")).read()
    block = re.search(r"```python\n(import numpy as np, fastprop as fp.*?)```", text, re.S).group(1)
    namespace = {}
    exec(compile(block, "README.md", "exec"), namespace)
    assert namespace["history"].loss[-1] < namespace["history"].loss[0]


def test_demo_runs(tmp_path):
    # from a directory other than the repository's root, where fastprop/ is the source tree
    out = subprocess.run([sys.executable, "-m", "fastprop", "demo", "--epochs", "20"],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert sum(l.startswith("epoch ") for l in lines) == 20
    assert "samples/s" in lines[-2]
    acc = float(re.search(r"test accuracy ([0-9.]+)", lines[-1]).group(1))
    assert acc > 0.9


@pytest.mark.parametrize("script,expected", [
    ("seed_four_layer.py", ["40.506", "-0.0120695", "1.899463"]),
    ("seed_two_layer.py", ["Input: [1 1], Prediction: 0.9", "Input: [-1 -1], Prediction: 0.0"]),
])
def test_examples_run(script, expected, tmp_path):
    out = subprocess.run([sys.executable, os.path.join(ROOT, "examples", script)],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    for text in expected:
        assert text in out.stdout


def test_digits_example_reaches_95_percent(tmp_path):
    pytest.importorskip("sklearn")
    out = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "digits.py")],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    acc = float(re.search(r"test accuracy ([0-9.]+)", out.stdout).group(1))
    assert acc >= 0.95

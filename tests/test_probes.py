"""Faults found by probing the landed code as an attacker would, each kept fixed: passes that
overlap across threads, tampered buffers under the engine, values that overflow float32 after
a check, integers beyond any float, and calls that failed half-way."""
import threading

import numpy as np
import pytest

import fastprop as fp
from fastprop._engine import Engine
from fastprop import schedules


def two_layer(dtype="float32", seed=0):
    return fp.Sequential([fp.Dense(3, 4, "tanh"), fp.Dense(4, 2)], dtype=dtype, seed=seed)


def test_explain_during_a_fit_waits_and_train_step_refuses():
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(4096, 64)), rng.normal(size=(4096, 64))
    model = fp.Sequential([fp.Dense(64, 256, "relu"), fp.Dense(256, 64)], seed=0)
    model.fit(X[:8], Y[:8], "mse", fp.SGD(1e-3))
    opt = model.optimizer
    done, started = threading.Event(), threading.Event()
    errors = []

    class Started(fp.Callback):
        def on_train_begin(self, model, logs):
            started.set()

    def work():
        try:
            model.fit(X, Y, "mse", opt, epochs=15, batch_size=512, callbacks=[Started()])
        except Exception as exc:  # pragma: no cover - would fail the test below
            errors.append(exc)
        done.set()

    t = threading.Thread(target=work)
    t.start()
    started.wait()
    refused = explained = 0
    while not done.is_set():
        trace = model.explain(X[:1], Y[:1], "mse")  # waits for the running epoch, never overlaps
        explained += np.isfinite(trace.loss)
        try:
            model.train_step(X[:4], Y[:4], "mse", fp.Adam())
        except RuntimeError:
            refused += 1
    t.join()
    assert not errors  # the fit was not disturbed
    assert explained and refused and np.isfinite(model.params).all()


def test_the_engine_refuses_buffers_that_changed_under_it():
    model = two_layer()
    state = np.zeros(2, np.uint64)
    params, grads = model.params.copy(), model.grads.copy()
    engine = Engine(model.architecture, params, grads, 4, state)
    params.resize(10_000, refcheck=False)
    with pytest.raises(ValueError, match="reshaped, resized or retyped"):
        engine.predict(np.ones((2, 3), np.float32), np.empty((2, 2), np.float32))
    engine = Engine(model.architecture, model.params, model.grads, 4, state)
    hyper = fp.Adam()._hyper()
    buf = np.zeros(model.n_params, np.float32)
    with pytest.raises(ValueError, match="must not share memory"):
        engine.bind_optimizer(hyper, [buf, buf], np.zeros(1, np.int64))
    with pytest.raises(ValueError, match="optimizer steps: must not share memory"):
        engine.bind_optimizer(fp.SGD()._hyper(), [], model.params[:2].view(np.int64))
    with pytest.raises(ValueError, match="momentum must be a finite number"):
        engine.bind_optimizer(dict(fp.SGD(momentum=0.5)._hyper(), momentum=np.nan),
                              [np.zeros(model.n_params, np.float32)], np.zeros(1, np.int64))
    with pytest.raises(ValueError, match="out: must not share memory"):
        engine.predict(np.ones((2, 3), np.float32), model.params[:4].reshape(2, 2))


@pytest.mark.parametrize("call,name", [
    (lambda m: setattr(m.layers[0], "W", np.full((3, 4), 1e39)), "W"),
    (lambda m: setattr(m, "params", np.full(26, 1e39)), "params"),
    (lambda m: setattr(m, "grads", np.full(26, -1e39)), "grads"),
    (lambda m: m.fit(np.ones((4, 3)), np.full((4, 2), 1e39), "mse"), "y"),
    (lambda m: m.evaluate(np.ones((4, 3)), np.full((4, 2), 1e39), "mse"), "y"),
    (lambda m: m.set_weights([(np.ones((3, 4)), np.ones(4)), (np.full((4, 2), 1e39),
                                                               np.zeros(2))]), "weights[1][0]"),
])
def test_values_beyond_float32_are_refused_after_the_cast(call, name):
    model = two_layer()
    before = model.params.copy()
    with pytest.raises(ValueError, match=rf"^{__import__('re').escape(name)}.*finite"):
        call(model)
    np.testing.assert_array_equal(model.params, before)  # nothing half-written


def test_weights_and_inits_beyond_float32():
    wide = fp.Dense(2, 2, init=np.full((2, 2), 1e39))
    with pytest.raises(ValueError, match=r"layers\[0\].init: expected finite"):
        fp.Sequential([wide], dtype="float32")
    assert not wide.in_model
    m64 = fp.Sequential([fp.Dense(2, 2)], dtype="float64")
    m64.params[0] = 1e39
    with pytest.raises(ValueError, match="dtype: expected finite"):
        m64.copy(dtype="float32")
    with pytest.raises(AttributeError):
        m64.layers[0].spec = m64.layers[0].spec._replace(activation="sigmoid")


def test_huge_sample_weights_are_normalized_in_double():
    X = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)
    model = two_layer()
    model.fit(X, np.zeros((8, 2)), "mse", fp.SGD(0.1), sample_weight=np.full(8, 3e38))
    assert np.isfinite(model.params).all()


@pytest.mark.parametrize("call,name", [
    (lambda: fp.SGD(lr=10**400), "lr"),
    (lambda: fp.Dropout(10**400), "rate"),
    (lambda: fp.Dense(2, 2, "leaky_relu", negative_slope=10**400), "negative_slope"),
    (lambda: two_layer().fit(np.ones((4, 3)), np.ones((4, 2)), "mse",
                             validation_split=10**400), "validation_split"),
    (lambda: two_layer().fit(np.ones((4, 3)), np.ones((4, 2)), "mse", epochs=3,
                             lr_schedule=lambda e, lr: 10**400), "lr_schedule"),
    (lambda: two_layer().fit(np.ones((4, 3)), np.ones((4, 2)), "mse", epochs=100,
                             lr_schedule=schedules.Exponential(1e10)), "lr_schedule"),
    (lambda: two_layer().fit(np.ones((4, 3)), np.ones((4, 2)), "mse", epochs=3,
                             lr_schedule=schedules.InverseScaling(1e300)), "lr_schedule"),
    (lambda: fp.gradcheck(two_layer(), np.ones((4, 3)), np.ones((4, 2)),
                          "half_mean_squared_error"), "loss"),
])
def test_overflowing_arguments_are_value_errors(call, name):
    with pytest.raises(ValueError, match=f"^{name}:"):
        call()


def test_metrics_that_do_not_apply_are_refused():
    model = fp.Sequential([fp.Dense(3, 1, "sigmoid")], seed=0)
    X, y = np.ones((6, 3)), np.array([0, 1, 0, 1, 0, 1])
    with pytest.raises(ValueError, match="metrics: top_k_accuracy needs a model with several"):
        model.evaluate(X, y, "binary_cross_entropy", metrics=["top_3_accuracy"])
    with pytest.raises(ValueError, match="metrics: expected top_k_accuracy with k >= 1"):
        model.evaluate(X, y, "binary_cross_entropy", metrics=["top_0_accuracy"])


def test_scikit_learn_estimators_refuse_cleanly_and_stay_unfitted():
    pytest.importorskip("sklearn")
    from sklearn.exceptions import NotFittedError
    from fastprop.sklearn import MLPClassifier, MLPRegressor
    X = np.random.default_rng(0).normal(size=(20, 3))
    y = np.arange(20) % 2
    for params, name in [(dict(momentum="a"), "momentum"), (dict(momentum=None), "momentum"),
                         (dict(dtype=np.zeros(2)), "dtype"),
                         (dict(learning_rate_init=10**400), "learning_rate_init"),
                         (dict(tol=10**400), "tol")]:
        with pytest.raises(ValueError, match=f"^{name}:"):
            MLPClassifier(**params).fit(X, y)
    est = MLPClassifier(early_stopping=True)
    with pytest.raises(ValueError, match="early_stopping"):
        est.partial_fit(X, y, classes=[0, 1])
    with pytest.raises(NotFittedError):
        est.predict(X)
    est = MLPClassifier(early_stopping=True, validation_fraction=0.01)
    with pytest.raises(ValueError, match="validation_fraction"):
        est.fit(X, y)
    with pytest.raises(NotFittedError):
        est.predict(X)
    with pytest.raises(ValueError, match="^X: expected values that fit in float32"):
        MLPRegressor(dtype="float32", max_iter=2).fit(np.full((10, 3), 1e39), np.ones(10))
    r = MLPRegressor(solver="sgd", learning_rate="invscaling", power_t=1e300, max_iter=3,
                     hidden_layer_sizes=(4,)).fit(X, y.astype(float))
    assert np.isfinite(r.coefs_[0]).all()


def test_crafted_files_with_huge_numbers_are_value_errors(tmp_path):
    from test_io import rewrite, trained
    model, _, _ = trained(optimizer=fp.Adam(0.01))
    good = model.save(tmp_path / "good.npz")
    edits = [lambda h: h["layers"][0].update(negative_slope=10**400),
             lambda h: h["optimizer"]["config"].update(lr=10**400),
             lambda h: h["optimizer"].update({"class": ["Adam"]})]
    for k, edit in enumerate(edits):
        path = tmp_path / f"bad{k}.npz"
        rewrite(good, path, header=edit, reseal=True)
        with pytest.raises(ValueError, match="not a valid fastprop model file"):
            fp.load(path)

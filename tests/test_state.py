"""State that cannot drift: models that pickle and copy into independent twins, buffers that
cannot be rebound, gradients that are whole or untouched, optimizer state owned by its model,
calls that validate before they change anything, one training at a time."""
import copy
import pickle
import threading

import numpy as np
import pytest

import fastprop as fp
import reference as ref


def data(seed=0, n=64):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 5)), rng.integers(0, 3, size=n)


def net(dtype="float32", seed=0, dropout=0.0):
    layers = [fp.Dense(5, 16, "tanh")] + ([fp.Dropout(dropout)] if dropout else []) + \
             [fp.Dense(16, 3, "softmax")]
    return fp.Sequential(layers, dtype=dtype, seed=seed)


def joblib_round_trip(model, tmp_path):
    joblib = pytest.importorskip("joblib")
    joblib.dump(model, tmp_path / "model.joblib")
    return joblib.load(tmp_path / "model.joblib")


COPIES = {
    "pickle": lambda m, tmp: pickle.loads(pickle.dumps(m)),
    "deepcopy": lambda m, tmp: copy.deepcopy(m),
    "copy": lambda m, tmp: copy.copy(m),
    "joblib": joblib_round_trip,
}


@pytest.mark.parametrize("how", sorted(COPIES))
@pytest.mark.parametrize("make_opt", [lambda: fp.SGD(0.1), lambda: fp.Adam(0.01),
                                      lambda: fp.SGD(0.05, momentum=0.9)])
def test_a_copied_fitted_model_trains_and_predicts_exactly_like_the_original(how, make_opt,
                                                                            tmp_path, dtype):
    X, y = data()
    model = net(dtype, dropout=0.2)
    model.fit(X, y, "softmax_cross_entropy", make_opt(), epochs=2, batch_size=16)
    twin = COPIES[how](model, tmp_path)
    assert twin is not model and repr(twin) == repr(model)
    assert not np.shares_memory(twin.params, model.params)
    np.testing.assert_array_equal(twin.predict(X), model.predict(X))
    assert twin.optimizer is not model.optimizer and repr(twin.optimizer) == repr(model.optimizer)
    assert twin.optimizer.t == model.optimizer.t == 8
    # three more epochs each, shuffled and with dropout: the same weights, bit for bit
    model.fit(X, y, "softmax_cross_entropy", epochs=3, batch_size=16)
    twin.fit(X, y, "softmax_cross_entropy", epochs=3, batch_size=16)
    np.testing.assert_array_equal(twin.params, model.params)
    np.testing.assert_array_equal(twin.predict(X), model.predict(X))
    assert twin.optimizer.t == model.optimizer.t == 20


@pytest.mark.parametrize("how", sorted(COPIES))
def test_an_unfitted_copy_is_a_whole_independent_model(how, tmp_path):
    X, y = data()
    model = net()
    twin = COPIES[how](model, tmp_path)
    assert twin.optimizer is None
    for layer in twin.layers:  # the copy's layers view the copy's own buffers
        assert np.shares_memory(layer.W, twin.params) and np.shares_memory(layer.dW, twin.grads)
        assert not np.shares_memory(layer.W, model.params)
    before = model.params.copy()
    twin.fit(X, y, "softmax_cross_entropy", fp.SGD(0.1), epochs=2)
    np.testing.assert_array_equal(model.params, before)  # the original did not move
    # what fit trained is what predict reads
    manual = ref.backprop(twin.get_weights(), ["tanh", "softmax"], X, np.eye(3)[y],
                          "softmax_cross_entropy")[2]
    np.testing.assert_allclose(twin.predict(X), manual, rtol=1e-5, atol=1e-6)


def test_params_and_grads_cannot_be_rebound_to_foreign_arrays():
    model = net("float64")
    buffer = model.params
    new = np.arange(model.n_params, dtype=np.float64)[::-1] / 100  # a reversed view
    model.params = new
    assert model.params is buffer and np.array_equal(model.params, new)
    assert np.shares_memory(model.layers[0].W, model.params)
    new[...] = 0  # the model holds a copy, not the caller's array
    assert model.params.any()
    X, y = data()
    model.fit(X, y, "softmax_cross_entropy", epochs=2)  # trains its own buffer, no crash
    before = model.params.copy()
    with pytest.raises(ValueError, match=r"params: expected shape \(147,\)"):
        model.params = np.zeros(146)
    with pytest.raises(ValueError, match="params: expected finite values"):
        model.params = np.full(147, np.nan)
    with pytest.raises(TypeError, match="params: expected numeric data"):
        model.params = ["a"] * 147
    np.testing.assert_array_equal(model.params, before)
    grads = model.grads
    model.grads = np.ones(147)
    assert model.grads is grads and (grads == 1).all()


def test_a_rejected_model_leaves_the_layers_it_was_given_alone():
    X, _ = data()
    first = fp.Dense(5, 16, "tanh")
    owner = fp.Sequential([first, fp.Dense(16, 3, "softmax")], seed=0)
    before = owner.predict(X)
    with pytest.raises(ValueError, match=r"layers\[0\]: this layer already belongs to a model"):
        fp.Sequential([first, fp.Dropout(0.5), fp.Dense(16, 3, "softmax")])
    assert first.dropout_rate == 0.0 and owner.architecture[0].dropout_rate == 0.0
    # no dropout crept in: a training step's loss is the loss without dropout
    y0 = np.zeros(len(X), int)
    loss = owner.train_step(X, y0, "softmax_cross_entropy", fp.SGD(1e-12))
    assert loss == pytest.approx(owner.evaluate(X, y0, "softmax_cross_entropy")["loss"], rel=1e-6)
    np.testing.assert_allclose(owner.predict(X), before, rtol=1e-6)
    fresh = fp.Dense(5, 16)
    with pytest.raises(ValueError, match=r"layers\[2\]: expected n_in=16"):
        fp.Sequential([fresh, fp.Dropout(0.3), fp.Dense(4, 3)])
    assert not fresh.in_model and fresh.dropout_rate == 0.0
    fp.Sequential([fresh, fp.Dense(16, 3)])  # still free to be used


def test_after_a_step_grads_hold_the_whole_gradient_or_are_untouched(dtype):
    X, y = data()
    model = net(dtype)
    model.grads[...] = 7.0
    model.fit(X, y, "softmax_cross_entropy", fp.SGD(0.1), epochs=2, batch_size=16)
    assert (model.grads == 7.0).all()  # plain SGD updates inside the GEMM: grads not written
    model.train_step(X[:16], y[:16], "softmax_cross_entropy", fp.SGD(0.1))
    assert (model.grads == 7.0).all()
    # any other optimizer: the last batch's whole gradient, at the weights before its update
    for opt in (fp.Adam(0.01), fp.SGD(0.1, momentum=0.9), fp.SGD(0.1, weight_decay=1e-3)):
        weights = model.get_weights()
        model.train_step(X[:16], y[:16], "softmax_cross_entropy", opt)
        _, grads, _ = ref.backprop([(W.astype(float), b.astype(float)) for W, b in weights],
                                   ["tanh", "softmax"], X[:16], y[:16], "softmax_cross_entropy")
        tol = dict(rtol=1e-4, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(model.grads, ref.flatten(grads), **tol)


def test_the_optimizer_state_belongs_to_the_model(tmp_path):
    X, y = data()
    a, b = net("float64", seed=1), net("float64", seed=2)
    opt = fp.Adam(0.01)
    a.fit(X, y, "softmax_cross_entropy", opt, epochs=2, batch_size=16)
    moments = [buf.copy() for buf in a._optimizer_state.buffers]
    b.fit(X, y, "softmax_cross_entropy", opt, epochs=1, batch_size=16)  # the same optimizer
    assert opt.t == 4 and a._optimizer_state.t == 8
    a.save(tmp_path / "a.npz")  # a's own moments and step count, untouched by b's training
    loaded = fp.load(tmp_path / "a.npz")
    assert loaded.optimizer.t == 8
    for saved, kept in zip(loaded._optimizer_state.buffers, moments):
        np.testing.assert_array_equal(saved, kept)
    assert any(buf.any() for buf in moments)
    with pytest.raises(ValueError, match="optimizer: expected the optimizer this model trained "
                                         "with last"):
        a.save(tmp_path / "other.npz", optimizer=fp.Adam(0.01))
    assert not (tmp_path / "other.npz").exists()
    # a continues its own state: the same as a model that never saw b
    c = net("float64", seed=1)
    opt_c = fp.Adam(0.01)
    c.fit(X, y, "softmax_cross_entropy", opt_c, epochs=2, batch_size=16)
    a.fit(X, y, "softmax_cross_entropy", opt, epochs=1, batch_size=16, seed=5)
    c.fit(X, y, "softmax_cross_entropy", opt_c, epochs=1, batch_size=16, seed=5)
    np.testing.assert_array_equal(a.params, c.params)


def test_set_weights_and_torch_state_dicts_validate_before_they_change_anything():
    model = net("float64")
    before = model.params.copy()
    good = model.get_weights()
    bad = [(W + 1, b + 1) for W, b in good]
    bad[1] = (bad[1][0], np.zeros(4))  # the second layer's bias has the wrong shape
    with pytest.raises(ValueError, match=r"weights\[1\]\[1\] \(b\): expected shape \(3,\)"):
        model.set_weights(bad)
    np.testing.assert_array_equal(model.params, before)
    bad[1] = (np.full((16, 3), np.inf), good[1][1])
    with pytest.raises(ValueError, match=r"weights\[1\]\[0\] \(W\): expected finite values"):
        model.set_weights(bad)
    np.testing.assert_array_equal(model.params, before)
    state = {"0.weight": good[0][0].T + 1, "0.bias": good[0][1] + 1,
             "2.weight": good[1][0].T + 1, "2.bias": np.zeros(5)}
    with pytest.raises(ValueError, match=r"state_dict\['2.bias'\]: expected shape \(3,\)"):
        model.from_torch_state_dict(state)
    np.testing.assert_array_equal(model.params, before)
    state["2.bias"] = good[1][1] + 1
    model.from_torch_state_dict(state)
    np.testing.assert_array_equal(model.params, before + 1)


def test_a_failed_load_changes_nothing_and_a_failed_fit_trains_nothing(tmp_path):
    X, y = data()
    model = net("float64")
    model.fit(X, y, "softmax_cross_entropy", fp.Adam(0.01), epochs=1)
    params, t = model.params.copy(), model.optimizer.t
    with pytest.raises(ValueError, match="validation_data"):
        model.fit(X, y, "softmax_cross_entropy", epochs=3, validation_data=(X[:, :2], y))
    with pytest.raises(ValueError, match="lr: expected a positive finite number"):
        model.optimizer.lr = -0.1
    np.testing.assert_array_equal(model.params, params)
    assert model.optimizer.t == t and model.optimizer.lr == 0.01


def test_one_training_at_a_time():
    X = np.random.default_rng(0).normal(size=(3000, 64))
    y = np.random.default_rng(1).integers(0, 10, size=3000)
    model = fp.Sequential([fp.Dense(64, 128, "relu"), fp.Dense(128, 10, "softmax")], seed=0)
    started, errors = threading.Event(), []

    class Signal(fp.Callback):
        def on_train_begin(self, model, logs):
            started.set()

    def work():
        model.fit(X, y, "softmax_cross_entropy", epochs=5, callbacks=[Signal()])

    t = threading.Thread(target=work)
    t.start()
    started.wait()
    try:
        model.fit(X, y, "softmax_cross_entropy", epochs=1)
    except RuntimeError as exc:
        errors.append(str(exc))
    t.join()
    assert errors and "already being trained" in errors[0]


def test_what_a_model_is_made_of_cannot_be_rebound():
    model = net()
    for name, value in (("layers", []), ("dtype", np.float16), ("seed", 3)):
        with pytest.raises(AttributeError):
            setattr(model, name, value)
    assert isinstance(model.layers, tuple) and model.dtype == np.float32

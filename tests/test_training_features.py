"""Warm starts, partial_fit, reproducibility and PyTorch state dicts."""
import numpy as np
import pytest

import fastprop as fp


def data(seed=0, n=80):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 5)), rng.integers(0, 3, size=n)


def net(dtype="float32", seed=0):
    return fp.Sequential([fp.Dense(5, 16, "relu"), fp.Dense(16, 3, "softmax")], dtype=dtype,
                         seed=seed)


def test_partial_fit_continues_weights_and_optimizer_state():
    X, y = data()
    b = net()
    b.fit(X, y, "softmax_cross_entropy", fp.Adam(0.01), epochs=1, batch_size=16, seed=1)
    opt = b.optimizer
    before = b.params.copy()
    b.partial_fit(X, y, "softmax_cross_entropy", batch_size=16)  # the same Adam: t carries on
    assert b.optimizer is opt and opt.t == 10
    assert not np.array_equal(before, b.params)
    # continuing is the same as one longer run, when the shuffles are the same
    c, d = net(), net()
    oc, od = fp.SGD(0.1, momentum=0.9), fp.SGD(0.1, momentum=0.9)
    c.fit(X, y, "softmax_cross_entropy", oc, epochs=2, batch_size=16, shuffle=False)
    d.fit(X, y, "softmax_cross_entropy", od, epochs=1, batch_size=16, shuffle=False)
    d.partial_fit(X, y, "softmax_cross_entropy", batch_size=16, shuffle=False)
    np.testing.assert_array_equal(c.params, d.params)
    assert oc.t == od.t == 10


@pytest.mark.parametrize("n_threads", [1, 2])
def test_runs_with_a_seed_and_a_thread_count_are_bit_identical(n_threads):
    X = np.random.default_rng(0).normal(size=(500, 64))
    y = np.random.default_rng(1).integers(0, 10, size=500)
    runs = []
    for _ in range(2):
        model = fp.Sequential([fp.Dense(64, 256, "relu"), fp.Dense(256, 10, "softmax")], seed=7)
        model.fit(X, y, "softmax_cross_entropy", fp.Adam(0.005), epochs=3, batch_size=32,
                  n_threads=n_threads)
        runs.append(model.params.copy())
    np.testing.assert_array_equal(runs[0], runs[1])


def test_torch_state_dict_round_trip():
    torch = pytest.importorskip("torch")
    model = net("float64", seed=3)
    tnet = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.ReLU(),
                               torch.nn.Linear(16, 3)).double()
    tnet.load_state_dict(model.to_torch_state_dict())
    X, _ = data()
    np.testing.assert_allclose(torch.softmax(tnet(torch.from_numpy(X)), 1).detach().numpy(),
                               model.predict(X), rtol=1e-12)
    other = net("float64", seed=9)
    other.from_torch_state_dict(tnet.state_dict())
    np.testing.assert_array_equal(other.params, model.params)
    bad = dict(tnet.state_dict())
    bad["0.weight"] = bad["0.weight"].T
    with pytest.raises(ValueError, match=r"state_dict\['0.weight'\]: expected shape \(16, 5\)"):
        other.from_torch_state_dict(bad)
    with pytest.raises(ValueError, match="expected 2 weight and bias entries"):
        other.from_torch_state_dict({"0.weight": bad["2.weight"]})


@pytest.mark.parametrize("init,std", [
    ("glorot_uniform", np.sqrt(2 / (400 + 300))), ("glorot_normal", np.sqrt(2 / (400 + 300))),
    ("he_uniform", np.sqrt(2 / 400)), ("he_normal", np.sqrt(2 / 400)), ("zeros", 0.0)])
def test_initializers(init, std):
    model = fp.Sequential([fp.Dense(400, 300, "relu", init=init)], seed=0)
    W = model.layers[0].W
    assert W.std() == pytest.approx(std, rel=0.02, abs=1e-12)
    assert abs(W.mean()) < 0.01 * max(std, 1e-3)
    if init.endswith("uniform"):
        assert np.abs(W).max() <= np.sqrt(3) * std * 1.0001
    again = fp.Sequential([fp.Dense(400, 300, "relu", init=init)], seed=0)
    np.testing.assert_array_equal(again.layers[0].W, W)  # seeded


def test_default_init_follows_the_activation_and_arrays_are_taken_as_given():
    m = fp.Sequential([fp.Dense(400, 300, "relu"), fp.Dense(300, 200, "tanh")], seed=1)
    assert m.layers[0].init == "he_uniform" and m.layers[1].init == "glorot_uniform"
    W = np.arange(6.0).reshape(2, 3)
    m2 = fp.Sequential([fp.Dense(2, 3, init=W)], dtype="float64")
    np.testing.assert_array_equal(m2.layers[0].W, W)
    with pytest.raises(ValueError, match=r"init: expected an array of shape \(3, 2\)"):
        fp.Dense(3, 2, init=W)
    with pytest.raises(ValueError, match="init: expected one of"):
        fp.Dense(3, 2, init="orthogonal")


def test_warm_start_false_starts_afresh():
    X, y = data()
    model = net(seed=4)
    first = model.params.copy()
    opt = fp.Adam(0.01)
    model.fit(X, y, "softmax_cross_entropy", opt, epochs=2, batch_size=16)
    trained = model.params.copy()

    class AtBegin(fp.Callback):
        def on_train_begin(self, model, logs):
            self.params = model.params.copy()

    seen = AtBegin()
    model.fit(X, y, "softmax_cross_entropy", opt, epochs=1, batch_size=16, warm_start=False,
              callbacks=[seen])
    assert opt.t == 5  # the state was reset, then one epoch of 5 steps
    start = seen.params
    assert not np.array_equal(start, trained) and not np.array_equal(start, first)  # new draws
    W0 = start[:5 * 16].reshape(5, 16)
    assert np.abs(W0).max() <= np.sqrt(6 / 5) and W0.std() == pytest.approx(np.sqrt(2 / 5), rel=0.3)
    assert not start[5 * 16:5 * 16 + 16].any()  # biases back at zero
    # and the default continues from the current weights
    model.fit(X, y, "softmax_cross_entropy", opt, epochs=1, batch_size=16, callbacks=[seen])
    assert not np.array_equal(seen.params, start) and opt.t == 10

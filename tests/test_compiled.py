"""The compiled training path: the same numbers as the layer-by-layer path, no allocation per
step or epoch, the GIL released, the thread bound honoured."""
import threading
import time
import tracemalloc

import numpy as np
import pytest

import fastprop as fp

CASES = [
    ("mse", "sigmoid", lambda rng, n, m: rng.normal(size=(n, m))),
    ("half_squared_error", "tanh", lambda rng, n, m: rng.normal(size=(n, m))),
    ("binary_cross_entropy", "sigmoid", lambda rng, n, m: (rng.random((n, m)) > 0.5) * 1.0),
    ("softmax_cross_entropy", "softmax", lambda rng, n, m: rng.integers(0, m, size=n)),
    ("softmax_cross_entropy", "softmax", lambda rng, n, m: np.eye(m)[rng.integers(0, m, size=n)]),
]


def build(out_act, dtype, hidden="relu", seed=0):
    return fp.Sequential([fp.Dense(5, 7, hidden), fp.Dense(7, 6, "leaky_relu"),
                          fp.Dense(6, 3, out_act)], dtype=dtype, seed=seed)


@pytest.mark.parametrize("loss,out_act,targets", CASES)
@pytest.mark.parametrize("batch_size", [1, 8, 23])  # 23 leaves a last batch of 3 (49 = 2 * 23 + 3)
def test_compiled_epochs_match_the_layer_by_layer_path(dtype, loss, out_act, targets, batch_size):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(49, 5))
    y = targets(rng, 49, 3)
    compiled, stepwise = build(out_act, dtype), build(out_act, dtype)
    history = compiled.fit(X, y, loss, fp.SGD(0.05), epochs=3, batch_size=batch_size, seed=3)
    order_rng, order = np.random.default_rng(3), np.arange(49)
    losses = []
    for _ in range(3):
        order_rng.shuffle(order)
        total = 0.0
        for lo in range(0, 49, batch_size):
            idx = order[lo:lo + batch_size]
            total += stepwise.train_step(X[idx], y[idx], loss, fp.SGD(0.05)) * len(idx)
        losses.append(total / 49)
    tol = dict(rtol=1e-4, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(compiled.params, stepwise.params, **tol)
    np.testing.assert_allclose(history.loss, losses, **tol)
    assert not np.array_equal(compiled.params, build(out_act, dtype).params)  # it trained


def test_no_allocation_grows_with_steps_or_epochs():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 20)).astype(np.float32)
    y = rng.integers(0, 4, size=2000)
    model = fp.Sequential([fp.Dense(20, 32, "relu"), fp.Dense(32, 4, "softmax")], seed=0)
    model.fit(X, y, "softmax_cross_entropy", epochs=1, batch_size=10)  # builds the workspace

    def peak(epochs):
        tracemalloc.start()
        model.fit(X, y, "softmax_cross_entropy", epochs=epochs, batch_size=10)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    one, twenty = peak(1), peak(20)  # 200 steps against 4,000 steps
    # per fit: the finite check's cast buffer (64 kB), the labels as int64 and the shuffle
    # order (16 kB each), a History: a constant, not a function of the steps
    assert one < 256 * 1024
    assert twenty - one < 8 * 1024, (one, twenty)


def test_fit_releases_the_gil():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4000, 256)).astype(np.float32)
    y = rng.integers(0, 10, size=4000)
    model = fp.Sequential([fp.Dense(256, 512, "relu"), fp.Dense(512, 10, "softmax")], seed=0)
    done = threading.Event()
    ticks = []

    def work():
        model.fit(X, y, "softmax_cross_entropy", epochs=3, batch_size=64)
        done.set()

    t = threading.Thread(target=work)
    start = time.perf_counter()
    t.start()
    while not done.is_set():
        ticks.append(time.perf_counter())
        time.sleep(0.001)
    t.join()
    elapsed = time.perf_counter() - start
    # an epoch is one call into compiled code: with the GIL held, this loop would stall for it
    assert elapsed < 0.05 or len(ticks) >= 0.25 * elapsed / 0.001


def test_n_threads_bounds_blas_and_gives_the_same_numbers():
    from threadpoolctl import threadpool_info

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 64))
    y = rng.normal(size=(300, 8))
    seen = []

    class Probe(fp.SGD):
        pass

    a = fp.Sequential([fp.Dense(64, 128, "tanh"), fp.Dense(128, 8)], dtype="float64", seed=0)
    b = a.copy()
    a.fit(X, y, "mse", epochs=2, batch_size=32, seed=0, n_threads=1)
    b.fit(X, y, "mse", epochs=2, batch_size=32, seed=0)
    np.testing.assert_allclose(a.params, b.params, rtol=1e-12)
    # the limit is lifted after the fit
    assert all(i["num_threads"] >= 1 for i in threadpool_info())
    with pytest.raises(ValueError, match="n_threads: expected a positive integer, got 0"):
        a.fit(X, y, "mse", n_threads=0)


def test_the_trainer_rejects_what_it_cannot_read():
    # fastprop._train.Trainer is importable: a direct caller gets an error, never a crash
    from fastprop import _train

    model = fp.Sequential([fp.Dense(3, 4, "relu"), fp.Dense(4, 2, "softmax")], seed=0)
    t = _train.Trainer(model.params, model.grads, [3, 4, 2], [3, 5], [0.01, 0.01], 3, 8, True,
                       True)
    X = np.zeros((10, 3), np.float32)
    labels = np.zeros(10, np.int64)
    with pytest.raises(ValueError, match="order: expected row indices in"):
        t.epoch(X, None, labels, np.array([0, 10], np.int64), 4, 0.1)
    with pytest.raises(ValueError, match="order: expected a C-contiguous int64"):
        t.epoch(X, None, labels, np.array([0, 1], np.int32), 4, 0.1)
    with pytest.raises(ValueError, match="labels: expected labels within"):
        t.epoch(X, None, np.full(10, 2, np.int64), None, 4, 0.1)
    with pytest.raises(ValueError, match="X: expected a C-contiguous float32 array with 3"):
        t.epoch(np.zeros((10, 3)), None, labels, None, 4, 0.1)
    with pytest.raises(ValueError, match="batch_size: expected at most 8"):
        t.epoch(X, None, labels, None, 9, 0.1)
    total, correct = t.epoch(X, None, labels, np.arange(5, dtype=np.int64), 4, 0.0)
    assert total == pytest.approx(5 * np.log(2), rel=1e-5)  # zero inputs: uniform softmax

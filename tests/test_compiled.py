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

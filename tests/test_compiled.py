"""The engine's training path: the same numbers as the NumPy oracle, no allocation per step or
epoch, the GIL released, the thread bound honoured, and an engine that checks what it is handed."""
import threading
import time
import tracemalloc

import numpy as np
import pytest

import fastprop as fp
import reference as ref

CASES = [
    ("mse", "sigmoid", lambda rng, n, m: rng.normal(size=(n, m))),
    ("half_squared_error", "tanh", lambda rng, n, m: rng.normal(size=(n, m))),
    ("mae", "identity", lambda rng, n, m: rng.normal(size=(n, m))),
    ("huber", "tanh", lambda rng, n, m: 2 * rng.normal(size=(n, m))),
    ("binary_cross_entropy", "sigmoid", lambda rng, n, m: (rng.random((n, m)) > 0.5) * 1.0),
    ("multilabel_binary_cross_entropy", "sigmoid",
     lambda rng, n, m: (rng.random((n, m)) > 0.5) * 1.0),
    ("softmax_cross_entropy", "softmax", lambda rng, n, m: rng.integers(0, m, size=n)),
    ("softmax_cross_entropy", "softmax", lambda rng, n, m: np.eye(m)[rng.integers(0, m, size=n)]),
]


def build(out_act, dtype, hidden="relu", seed=0):
    return fp.Sequential([fp.Dense(5, 7, hidden), fp.Dense(7, 6, "leaky_relu"),
                          fp.Dense(6, 3, out_act)], dtype=dtype, seed=seed)


@pytest.mark.parametrize("loss,out_act,targets", CASES)
@pytest.mark.parametrize("batch_size", [1, 8, 23])  # 23 leaves a last batch of 3 (49 = 2 * 23 + 3)
def test_fit_matches_the_numpy_oracle(dtype, loss, out_act, targets, batch_size):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(49, 5))
    y = targets(rng, 49, 3)
    model = build(out_act, dtype)
    start = model.get_weights()
    history = model.fit(X, y, loss, fp.SGD(0.05), epochs=3, batch_size=batch_size, seed=3)
    batches = ref.epoch_batches(49, batch_size, 3, seed=3)
    expected, losses = ref.train(start, ["relu", "leaky_relu", out_act], X, y, loss, batches,
                                 ref.Optimizer("SGD", lr=0.05))
    per_epoch = len(batches) // 3
    epoch_losses = [sum(v * len(b) for v, b in zip(losses[e * per_epoch:(e + 1) * per_epoch],
                                                    batches[e * per_epoch:(e + 1) * per_epoch]))
                    / 49 for e in range(3)]
    tol = dict(rtol=1e-4, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(model.params, ref.flatten(expected), **tol)
    np.testing.assert_allclose(history.loss, epoch_losses, **tol)
    assert not np.allclose(model.params, ref.flatten(start))  # it trained


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
    a = fp.Sequential([fp.Dense(64, 128, "tanh"), fp.Dense(128, 8)], dtype="float64", seed=0)
    b = a.copy()
    a.fit(X, y, "mse", epochs=2, batch_size=32, seed=0, n_threads=1)
    b.fit(X, y, "mse", epochs=2, batch_size=32, seed=0)
    np.testing.assert_allclose(a.params, b.params, rtol=1e-12)
    # the limit is lifted after the fit
    assert all(i["num_threads"] >= 1 for i in threadpool_info())
    with pytest.raises(ValueError, match="n_threads: expected a positive integer, got 0"):
        a.fit(X, y, "mse", n_threads=0)


def test_the_engine_rejects_what_it_cannot_read():
    # fastprop._engine.Engine is importable: a direct caller gets an error, never a crash
    from fastprop._engine import Engine

    model = fp.Sequential([fp.Dense(3, 4, "relu"), fp.Dense(4, 2, "softmax")], seed=0)
    state = np.zeros(2, np.uint64)
    arch = model.architecture
    with pytest.raises(ValueError, match="params: expected 26 parameters"):
        Engine(arch, model.params[:-1].copy(), model.grads[:-1].copy(), 8, state)
    with pytest.raises(ValueError, match="params: expected a writable C-contiguous"):
        Engine(arch, model.params[::-1], model.grads, 8, state)
    with pytest.raises(ValueError, match="grads: expected the shape and dtype of params"):
        Engine(arch, model.params, model.grads[:10], 8, state)
    with pytest.raises(ValueError, match="grads: must not share memory with params"):
        Engine(arch, model.params, model.params, 8, state)
    with pytest.raises(ValueError, match=r"layers\[1\]: expected n_in=4"):
        Engine([arch[0], arch[1]._replace(n_in=5)], model.params, model.grads, 8, state)
    t = Engine(arch, model.params, model.grads, 8, state)
    X = np.zeros((10, 3), np.float32)
    labels = np.zeros(10, np.int64)
    CE = fp.LOSSES["softmax_cross_entropy"]
    data = t.data(X, None, labels, None, CE)
    with pytest.raises(ValueError, match="optimizer: none is bound"):
        t.epoch(data, 0, 10, 4, 0.1)
    with pytest.raises(ValueError, match=r"optimizer state: expected 2 buffers"):
        t.bind_optimizer(fp.Adam()._hyper(), [], np.zeros(1, np.int64))
    with pytest.raises(ValueError, match=r"optimizer state\[0\]: expected a writable"):
        t.bind_optimizer(fp.Adam()._hyper(), [np.zeros(3, np.float32)] * 2, np.zeros(1, np.int64))
    with pytest.raises(KeyError):  # a misspelt or missing hyperparameter never becomes 0
        t.bind_optimizer({"kind": 0, "lr": 0.1}, [], np.zeros(1, np.int64))
    steps = np.zeros(1, np.int64)
    t.bind_optimizer(fp.SGD(0.1)._hyper(), [], steps)
    with pytest.raises(ValueError, match=r"order: expected every row exactly once"):
        t.data(X, None, labels, None, CE, np.array([0] * 9 + [10], np.int64))
    with pytest.raises(ValueError, match="order: expected an int64 permutation of the 10 rows"):
        t.data(X, None, labels, None, CE, np.arange(10, dtype=np.int32))
    with pytest.raises(ValueError, match=r"labels: expected labels in \[0, 2\)"):
        t.data(X, None, np.full(10, 2, np.int64), None, CE)
    with pytest.raises(ValueError, match="X: expected a non-empty C-contiguous float32 array with 3"):
        t.data(np.zeros((10, 3)), None, labels, None, CE)
    with pytest.raises(ValueError, match="batch_size: expected 1 to 8, got 9"):
        t.epoch(data, 0, 10, 9, 0.1)
    with pytest.raises(ValueError, match=r"lo, hi: expected 0 <= lo <= hi <= 10, got 0, 11"):
        t.epoch(data, 0, 11, 4, 0.1)
    with pytest.raises(ValueError, match="loss: unknown code 99"):
        t.data(X, None, labels, None, 99)
    with pytest.raises(ValueError, match="Y: expected a C-contiguous float32 array"):
        t.data(X, None, None, None, CE)
    with pytest.raises(ValueError, match="loss: code 0 does not take an output of activation "
                                         "code 5"):  # the loss table's required output
        t.data(X, np.zeros((10, 2), np.float32), None, None, fp.LOSSES["mse"])
    other = Engine([arch[0], arch[1]._replace(activation="sigmoid")], model.params,
                   model.grads, 8, state)
    other.bind_optimizer(fp.SGD(0.1)._hyper(), [], np.zeros(1, np.int64))
    with pytest.raises(ValueError, match="data: expected Data made by an engine of this model"):
        other.epoch(data, 0, 10, 4, 0.1)
    with pytest.raises(ValueError, match="out: must not share memory with X"):
        Xs = np.zeros((4, 3), np.float32)
        t.predict(Xs, Xs.reshape(-1)[:8].reshape(4, 2))
    with pytest.raises(TypeError, match="rebuilt from its model"):
        import pickle
        pickle.dumps(t)
    first = t.data(X, None, labels, None, CE, np.arange(10, dtype=np.int64))
    total, correct, diverged = t.epoch(first, 0, 5, 4, 0.0)
    assert diverged == -1
    assert total == pytest.approx(5 * np.log(2), rel=1e-5)  # zero inputs: uniform softmax
    assert steps[0] == 2  # two batches: the step count advanced in place
    # arrays are read through numpy's struct: a strided or byte-swapped one is refused, not misread
    copies = fp.loop.Snapshot(model).copies
    outs = (np.full(1, np.nan), np.zeros(1, np.int64), np.zeros(1))
    with pytest.raises(ValueError, match="shuffle_state: expected a writable C-contiguous uint64"):
        t.epochs(first, 4, np.array([0.1]), np.zeros(4, np.uint64)[::2], *outs, copies)
    with pytest.raises(ValueError, match="out: expected a writable C-contiguous float32"):
        t.predict(X, np.zeros((10, 2), ">f4"))
    with pytest.raises(ValueError, match=r"optimizer steps: expected a writable int64 array"):
        t.bind_optimizer(fp.SGD(0.1)._hyper(), [], np.zeros(1, ">i8"))
    assert steps[0] == 2 and np.isnan(outs[0][0])  # nothing ran


@pytest.mark.parametrize("loss,out_act,targets", CASES[::2] + CASES[-1:])
@pytest.mark.parametrize("opt", [("SGD", dict(lr=0.05)), ("Adam", dict(lr=0.01))])
def test_sample_weights_and_l2_penalty_match_the_oracle(dtype, loss, out_act, targets, opt):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(30, 5))
    y = targets(rng, 30, 3)
    w = rng.random(30) * 3
    w[:4] = 0  # zero weights count nothing
    model = build(out_act, dtype)
    start = model.get_weights()
    h = model.fit(X, y, loss, getattr(fp, opt[0])(**opt[1]), epochs=2, batch_size=8, seed=2,
                  sample_weight=w, l2_penalty=0.3)
    batches = ref.epoch_batches(30, 8, 2, seed=2)
    expected, losses = ref.train(start, ["relu", "leaky_relu", out_act], X, y, loss, batches,
                                 ref.Optimizer(opt[0], **opt[1]), sample_weight=w, l2=0.3)
    tol = dict(rtol=2e-4, atol=2e-6) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(model.params, ref.flatten(expected), **tol)
    first = sum(v * len(b) for v, b in zip(losses[:4], batches[:4])) / 30
    np.testing.assert_allclose(h.loss[0], first, **tol)


def test_whole_fits_in_one_call_equal_fits_with_python_between_epochs(dtype):
    from fastprop import schedules
    rng = np.random.default_rng(7)
    X = rng.normal(size=(57, 5))
    y = rng.integers(0, 3, size=57)

    class Nothing(fp.Callback):  # any callback keeps fit in Python between epochs
        pass

    runs = []
    for callbacks in (None, [Nothing()]):
        model = build("softmax", dtype)
        h = model.fit(X, y, "softmax_cross_entropy", fp.Adam(0.01), epochs=6, batch_size=8,
                      lr_schedule=schedules.StepDecay(2, 0.5), callbacks=callbacks)
        runs.append((model.params.copy(), h, model._shuffle_state.copy()))
    (pa, ha, sa), (pb, hb, sb) = runs
    np.testing.assert_array_equal(pa, pb)
    assert ha.loss == hb.loss and ha.accuracy == hb.accuracy and ha.lr == hb.lr
    assert ha.epoch == hb.epoch == [1, 2, 3, 4, 5, 6] and len(ha.seconds) == 6
    np.testing.assert_array_equal(sa, sb)
    assert sa[1] == 6  # six epochs shuffled, counted in the model's state


def test_the_shuffles_are_permutations_seeded_and_uniform():
    from fastprop import _kernels
    order = np.arange(10, dtype=np.int64)
    seen = np.zeros((10, 10))
    for epoch in range(4000):
        _kernels._shuffle(order, 123, epoch)
        assert sorted(order) == list(range(10))
        seen[order, np.arange(10)] += 1
    # every value lands in every place about equally often (4000 / 10 = 400 each)
    assert np.abs(seen - 400).max() < 100
    again = np.arange(10, dtype=np.int64)
    _kernels._shuffle(again, 123, 0)
    first = np.arange(10, dtype=np.int64)
    _kernels._shuffle(first, 123, 0)
    np.testing.assert_array_equal(again, first)  # the same (seed, count), the same order
    other = np.arange(10, dtype=np.int64)
    _kernels._shuffle(other, 124, 0)
    assert not np.array_equal(other, first)


def _blas_threads():
    from threadpoolctl import threadpool_info
    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]


def test_default_threads_follow_the_work_and_the_other_processes(monkeypatch):
    import fastprop.threads as T

    small = fp.Sequential([fp.Dense(2, 4, "sigmoid"), fp.Dense(4, 1, "sigmoid")])
    big = fp.Sequential([fp.Dense(784, 256, "relu"), fp.Dense(256, 10)])
    assert T.step_work(small, 100) == 100 * (2 * 4 + 4 * 1)
    assert T.step_work(big, 64) == 64 * (784 * 256 + 256 * 10)
    assert T.step_work(big, "many") == 0  # unchecked arguments count as small; fit refuses them
    monkeypatch.setattr(T, "usable_cores", lambda: 4)
    monkeypatch.setattr(T, "others_load", lambda cores: pytest.fail("small steps look at nothing"))
    assert T.default_threads(small, 100) is None  # left as they are
    assert T.default_threads(big, 1) is None  # 200K multiply-adds
    monkeypatch.setattr(T, "others_load", lambda cores: 0.2)
    assert T.default_threads(big, 64) is None  # an idle machine: left as they are
    monkeypatch.setattr(T, "others_load", lambda cores: 2.4)
    assert T.default_threads(big, 64) == 2  # the cores the others leave
    monkeypatch.setattr(T, "others_load", lambda cores: 7.0)
    assert T.default_threads(big, 64) == 1
    monkeypatch.setattr(T, "others_load", lambda cores: 2.4)
    assert T.default_threads(big, 10**6, n_rows=1) is None  # a step of the data's 1 row
    monkeypatch.setattr(T, "usable_cores", lambda: 1)
    assert T.default_threads(big, 64) is None


def test_others_load_counts_the_other_processes_threads(monkeypatch):
    import fastprop.threads as T

    monkeypatch.setattr(T.os, "getloadavg", lambda: (1.2, 1.0, 1.0))
    monkeypatch.setattr(T, "_running_now", lambda: pytest.fail("not looked at when not loaded"))
    assert T.others_load(2) == 0.0  # the load average leaves a core free: no closer look
    monkeypatch.setattr(T.os, "getloadavg", lambda: (3.5, 3.0, 3.0))
    looks = iter([(5, 2), (4, 2), (9, 1)])  # (runnable now, this process's): 3, 2, 8 others
    monkeypatch.setattr(T, "_running_now", lambda: next(looks))
    assert T.others_load(2) == 3.0  # the median
    monkeypatch.setattr(T, "_running_now", lambda: (3, 3))  # only this process's threads
    assert T.others_load(2) == 0.0
    monkeypatch.setattr(T, "_running_now", lambda: None)  # no /proc
    assert T.others_load(2) == 0.0


def test_others_load_counts_this_process_share_of_the_machine(monkeypatch):
    import fastprop.threads as T

    # a container with 2 of the host's 16 CPUs: the host's load lands on them in proportion
    monkeypatch.setattr(T.os, "cpu_count", lambda: 16)
    monkeypatch.setattr(T.os, "getloadavg", lambda: (10.0, 10.0, 10.0))
    monkeypatch.setattr(T, "_running_now", lambda: pytest.fail("1.25 of 2 cores: no look"))
    assert T.others_load(2) == 0.0
    monkeypatch.setattr(T.os, "getloadavg", lambda: (40.0, 40.0, 40.0))
    monkeypatch.setattr(T, "_running_now", lambda: (33, 1))  # 32 others on 16 CPUs: 4 on ours
    assert T.others_load(2) == pytest.approx(4.0)


def test_limit_threads_never_raises_a_limit_and_survives_overlapping_fits():
    import fastprop.threads as T
    from threadpoolctl import threadpool_info, threadpool_limits

    def pools():
        return sorted((i["user_api"], i["filepath"], i["num_threads"]) for i in threadpool_info())

    before = pools()
    with pytest.raises(ValueError, match="n_threads: expected a positive integer, got 0"):
        with T.limit_threads(0):
            pass
    assert pools() == before
    # the user limits BLAS alone to 1: a default limit of 2 leaves it at 1
    with threadpool_limits(limits=1, user_api="blas"):
        with T.limit_threads(2, lower_only=True):
            assert all(n == 1 for api, _, n in pools() if api == "blas")
    assert pools() == before
    # limits in two threads, A enters, B enters, A leaves, B leaves: see tests/test_threads.py
    with T.limit_threads(1):
        assert all(n == 1 for _, _, n in pools())
    assert pools() == before


def test_overlapping_default_fits_in_threads_restore_the_pools(monkeypatch):
    import threading
    import fastprop.threads as T
    from threadpoolctl import threadpool_info

    before = sorted((i["filepath"], i["num_threads"]) for i in threadpool_info())
    monkeypatch.setattr(T, "threads_for_work", lambda work: 1)  # a busy machine
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(64, 4)), rng.normal(size=(64, 1))
    started, release = threading.Event(), threading.Event()

    class Hold:  # keeps fit A running until B has started and finished its first epoch
        def on_epoch_end(self, model, epoch, logs):
            started.set()
            release.wait(10)

    class Go:
        def on_epoch_end(self, model, epoch, logs):
            release.set()

    def fit_a():
        fp.Sequential([fp.Dense(4, 1)], dtype="float64").fit(
            X, y, "mse", epochs=1, callbacks=[Hold()])

    t = threading.Thread(target=fit_a)
    t.start()
    assert started.wait(10)
    fp.Sequential([fp.Dense(4, 1)], dtype="float64").fit(X, y, "mse", epochs=2,
                                                         callbacks=[Go()])
    t.join(10)
    assert sorted((i["filepath"], i["num_threads"]) for i in threadpool_info()) == before


def test_running_now_reads_this_machine():
    import fastprop.threads as T

    now = T._running_now()
    if now is None:
        pytest.skip("no /proc on this system")
    running, own = now
    assert running >= 1 and own >= 1  # at least this thread runs


def test_a_default_fit_runs_with_the_threads_default_threads_picks(monkeypatch):
    import fastprop.threads as T
    from threadpoolctl import threadpool_limits

    seen = []

    class Watch:
        def on_epoch_end(self, model, epoch, logs):
            seen.append(_blas_threads())

    before = _blas_threads()
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(64, 4)), rng.normal(size=(64, 1))
    model = fp.Sequential([fp.Dense(4, 8, "tanh"), fp.Dense(8, 1)], dtype="float64")
    model.fit(X, y, "mse", epochs=1, batch_size=16, callbacks=[Watch()])
    assert seen == [before]  # a small step: the pools as they were
    monkeypatch.setattr(T, "threads_for_work", lambda work: 1)  # a busy machine
    seen.clear()
    model.fit(X, y, "mse", epochs=1, batch_size=16, callbacks=[Watch()])
    assert seen and all(n == 1 for n in seen[0])
    assert _blas_threads() == before  # restored
    # a limit the user set around the fit is never raised
    monkeypatch.setattr(T, "threads_for_work", lambda work: 2)
    with threadpool_limits(limits=1):
        seen.clear()
        model.fit(X, y, "mse", epochs=1, batch_size=16, callbacks=[Watch()])
    assert seen and all(n == 1 for n in seen[0])
    # a thread pool loaded after the first fit is found: the cached controller is rebuilt when
    # new modules were imported
    T._controller[1] = -5
    seen.clear()
    model.fit(X, y, "mse", epochs=1, batch_size=16, callbacks=[Watch()], n_threads=1)
    assert seen and all(n == 1 for n in seen[0])


def test_copies_take_and_restore_their_pairs_and_refuse_bad_ones():
    import pickle
    from fastprop._kernels import Copies

    live = [np.arange(5.0), np.arange(3, dtype=np.uint64)]
    saved = [np.zeros(5), np.zeros(3, np.uint64)]
    c = Copies(list(zip(live, saved)))
    c.take()
    np.testing.assert_array_equal(saved[0], live[0])
    np.testing.assert_array_equal(saved[1], live[1])
    live[0][:] = -1
    live[1][:] = 7
    c.restore()
    np.testing.assert_array_equal(live[0], np.arange(5.0))
    np.testing.assert_array_equal(live[1], np.arange(3))
    a = np.zeros(4)
    for bad in ([(np.zeros(4), np.zeros(5))], [(a, a)], [(np.zeros(4), np.zeros(8)[::2])],
                [(np.zeros(4), [0.0] * 4)], [(np.array([None]), np.array([None]))]):
        with pytest.raises(ValueError, match="pairs"):
            Copies(bad)
    ro = np.zeros(4)
    ro.setflags(write=False)
    with pytest.raises(ValueError, match="pairs"):
        Copies([(np.zeros(4), ro)])
    with pytest.raises(TypeError, match="not pickled"):
        pickle.dumps(c)

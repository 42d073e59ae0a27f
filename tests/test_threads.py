"""Thread limits that hold in any thread: fit(n_threads=k) and the default limit reach BLAS
(a process-wide pool) and OpenMP (a pool per calling thread) whether the fit runs in the main
thread or a worker, before or after another thread's fit, or while it runs; the pools come back
to their own limits afterwards. The counts asserted are the ones the libraries report from inside
the fit (a callback), and a fit's weights do not depend on the thread that ran it."""
import threading

import numpy as np
import pytest

import fastprop as fp

threadpoolctl = pytest.importorskip("threadpoolctl")


def counts():
    """{'blas': n, 'openmp': n} as the libraries report them to the calling thread."""
    seen = {}
    for info in threadpoolctl.threadpool_info():
        seen[info["user_api"]] = min(seen.get(info["user_api"], 10**6), info["num_threads"])
    return seen


def pools():
    return sorted((i["filepath"], i["num_threads"]) for i in threadpoolctl.threadpool_info())


rng = np.random.default_rng(0)
X = rng.normal(size=(256, 32))
Y = rng.normal(size=(256, 4))


class Watch:
    """Records the counts seen inside the fit; optionally waits on events to overlap fits."""

    def __init__(self, arrived=None, go=None):
        self.seen, self.arrived, self.go = [], arrived, go

    def on_epoch_end(self, model, epoch, logs):
        self.seen.append(counts())
        if self.arrived is not None:
            self.arrived.set()
            assert self.go.wait(20)
            self.seen.append(counts())


def fit(n_threads, watch=None, seed=0):
    model = fp.Sequential([fp.Dense(32, 64, "tanh"), fp.Dense(64, 4)], dtype="float64",
                          seed=seed)
    model.fit(X, Y, "mse", fp.SGD(0.01), epochs=2, batch_size=32, n_threads=n_threads,
              callbacks=[watch or Watch()])
    return model


def in_thread(fn):
    out = []
    t = threading.Thread(target=lambda: out.append(fn()))
    t.start()
    t.join(60)
    assert not t.is_alive()
    return out[0]


def cores():
    return counts().get("blas", 1)


@pytest.mark.skipif(len(__import__("os").sched_getaffinity(0)) < 2, reason="needs 2 cores")
@pytest.mark.parametrize("order", ["main first", "worker first"])
def test_n_threads_holds_in_a_worker_thread_before_or_after_another_fit(order):
    before = pools()
    main_watch, worker_watch = Watch(), Watch()
    if order == "main first":
        fit(2, main_watch)
        in_thread(lambda: fit(1, worker_watch))
    else:
        in_thread(lambda: fit(1, worker_watch))
        fit(2, main_watch)
    assert all(c["blas"] == 1 and c.get("openmp", 1) == 1 for c in worker_watch.seen)
    assert all(c["blas"] == 2 and c.get("openmp", 2) == 2 for c in main_watch.seen)
    assert pools() == before


def test_a_fit_gives_the_same_weights_in_any_thread():
    here = fit(1)
    there = in_thread(lambda: fit(1))
    after_other = (fit(2), in_thread(lambda: fit(1)))[1]
    np.testing.assert_array_equal(here.params, there.params)
    np.testing.assert_array_equal(here.params, after_other.params)


@pytest.mark.skipif(len(__import__("os").sched_getaffinity(0)) < 2, reason="needs 2 cores")
def test_overlapping_fits_never_run_on_more_threads_than_they_asked():
    before = pools()
    arrived, go = threading.Event(), threading.Event()
    first = Watch(arrived, go)
    t = threading.Thread(target=lambda: fit(2, first))
    t.start()
    assert arrived.wait(20)  # the 2-thread fit is between epochs; a 1-thread fit runs now
    second = Watch()
    fit(1, second)
    go.set()
    t.join(60)
    # while both ran, the shared BLAS pool was at 1: the smaller limit in force; each
    # thread's OpenMP pool at its own fit's limit
    assert all(c["blas"] == 1 for c in second.seen)
    assert all(c.get("openmp", 1) == 1 for c in second.seen)
    assert first.seen[0]["blas"] == 2 and first.seen[0].get("openmp", 2) == 2
    assert first.seen[1].get("openmp", 2) == 2  # its own thread's pool, untouched by the other
    assert first.seen[-1]["blas"] == 2  # the 1-thread fit ended: back to the 2 it asked for
    assert pools() == before


@pytest.mark.skipif(len(__import__("os").sched_getaffinity(0)) < 2, reason="needs 2 cores")
def test_overlapping_default_fits_share_the_cores():
    import fastprop.threads as T
    before = pools()
    arrived, go = threading.Event(), threading.Event()
    first = Watch(arrived, go)
    big = np.zeros((512, 1024))  # a step of 512 x 1024 x 8 multiply-adds: above the threshold

    def fit_big(watch):
        m = fp.Sequential([fp.Dense(1024, 8)], dtype="float64", seed=0)
        m.fit(big, np.zeros((512, 8)), "mse", epochs=1, batch_size=512, callbacks=[watch])

    assert T.work_of([1024, 8], 512) >= T.THREADS_MIN_WORK
    t = threading.Thread(target=lambda: fit_big(first))
    t.start()
    assert arrived.wait(20)
    second = Watch()
    fit_big(second)
    go.set()
    t.join(60)
    assert second.seen[0]["blas"] == 1  # two fits on two cores: one BLAS thread each
    assert pools() == before

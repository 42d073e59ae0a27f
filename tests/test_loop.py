"""The one training loop (fastprop/loop.py): every caller that trains, fit, partial_fit,
train_step, the scikit-learn estimators (dense and sparse X) and data-parallel fits, stops on
divergence the same way: a FloatingPointError naming the batch, and the model as it was before
that batch, so that the very next step on that batch is the one that diverges."""
import re

import numpy as np
import pytest

import fastprop as fp
from fastprop import loop

X, y = fp.datasets.make_seed_dataset()
Y = y.reshape(-1, 1) * 1e3  # targets that make lr 1e4 diverge within a few batches
LR = 1e4


def model(seed=0):
    return fp.Sequential([fp.Dense(2, 8, "relu"), fp.Dense(8, 1)], dtype="float64", seed=seed)


def the_next_step_diverges(m, rows, lr=LR, loss="mse"):
    """True when one SGD step on `rows` from the model's weights goes non-finite (and the model
    was finite before it): the loop stopped right before the bad batch."""
    assert np.isfinite(m.params).all()
    twin = m.copy()
    with pytest.raises(FloatingPointError, match="train_step: batch 1 of 1"):
        twin.train_step(X[rows], Y[rows], loss, fp.SGD(lr))
    return True


def batch_of(message, batch_size=10):
    epoch, batch = re.search(r"epoch (\d+), batch (\d+) of 10", message).groups()
    return int(epoch), slice((int(batch) - 1) * batch_size, int(batch) * batch_size)


def test_fit_stops_before_the_bad_batch():
    m = model()
    with pytest.raises(FloatingPointError, match="^fit: epoch 1, batch") as info:
        m.fit(X, Y, "mse", fp.SGD(LR), epochs=5, batch_size=10, shuffle=False)
    _, rows = batch_of(str(info.value))
    assert the_next_step_diverges(m, rows)


def test_fit_with_callbacks_stops_the_same_way_as_the_compiled_epochs():
    a, b = model(), model()
    with pytest.raises(FloatingPointError) as compiled:
        a.fit(X, Y, "mse", fp.SGD(LR), epochs=5, batch_size=10, seed=3)
    with pytest.raises(FloatingPointError) as python:
        b.fit(X, Y, "mse", fp.SGD(LR), epochs=5, batch_size=10, seed=3,
              callbacks=[fp.Callback()])
    assert str(compiled.value) == str(python.value)
    np.testing.assert_array_equal(a.params, b.params)


def test_partial_fit_stops_before_the_bad_batch():
    m = model()
    with pytest.raises(FloatingPointError, match="^fit: epoch 1, batch") as info:
        m.partial_fit(X, Y, "mse", fp.SGD(LR), batch_size=10, shuffle=False)
    _, rows = batch_of(str(info.value))
    assert the_next_step_diverges(m, rows)


def test_train_step_leaves_the_model_as_it_was():
    m = model()
    before = m.params.copy()
    opt = fp.SGD(1e250)  # one step: W beyond float64
    with pytest.raises(FloatingPointError, match="^train_step: batch 1 of 1: .* from before "
                                                 "that batch"):
        m.train_step(X, Y * 1e100, "mse", opt)
    np.testing.assert_array_equal(m.params, before)
    assert opt.t == 0 and m._dropout_step == 0


@pytest.mark.parametrize("sparse", [False, True])
def test_estimators_stop_before_the_bad_batch(sparse):
    sklearn = pytest.importorskip("fastprop.sklearn")
    scipy_sparse = pytest.importorskip("scipy.sparse")
    est = sklearn.MLPRegressor(hidden_layer_sizes=(8,), solver="sgd", momentum=0.0, learning_rate_init=LR,
                               batch_size=10, shuffle=False, max_iter=5, alpha=0.0,
                               random_state=0, dtype="float64")
    data = scipy_sparse.csr_matrix(X) if sparse else X
    with pytest.raises(ValueError, match="^Solver produced non-finite parameter weights") as info:
        est.fit(data, Y.ravel())  # scikit-learn's error, from the loop's
    assert isinstance(info.value.__cause__, FloatingPointError)
    assert str(info.value.__cause__).startswith("fit: epoch 1, batch")
    _, rows = batch_of(str(info.value.__cause__))
    assert the_next_step_diverges(est.model_, rows, loss="half_mean_squared_error")


def test_data_parallel_fits_stop_like_one_process():
    from distributed_cases import ThreadGroup

    def run(comm):
        m = model()
        with pytest.raises(FloatingPointError) as info:
            m.fit(X, Y, "mse", fp.SGD(LR), epochs=5, batch_size=10, shuffle=False, comm=comm)
        return m, str(info.value)

    (m0, e0), (m1, e1) = ThreadGroup(2).run(run)
    alone, e = run(None)
    assert e0 == e1 == e
    np.testing.assert_allclose(m0.params, alone.params, rtol=1e-12)
    assert np.array_equal(m0.params, m1.params)


def test_the_training_state_is_listed_once_and_snapshots_cover_it():
    m = model()
    m.fit(X, Y / 1e3, "mse", fp.Adam(1e-3), epochs=2, batch_size=10)
    names = [name for name, _ in m._state()]
    assert names == ["params", "grads", "dropout_state", "shuffle_state", "optimizer_steps",
                     "optimizer_state_0", "optimizer_state_1"]
    snapshot = loop.Snapshot(m)
    snapshot.take()
    before = [arr.copy() for _, arr in m._state()]
    m.fit(X, Y / 1e3, "mse", epochs=1, batch_size=10)
    changed = [name for (name, arr), old in zip(m._state(), before)
               if not np.array_equal(arr, old)]
    assert changed == names  # every entry moves with training (the dropout step counts on)
    snapshot.restore()
    for (name, arr), old in zip(m._state(), before):
        if name != "grads":  # every step computes them anew: not kept
            np.testing.assert_array_equal(arr, old, err_msg=name)

"""Sparse X (scipy.sparse) through every entry point: the same numbers as the densified matrix,
against the NumPy oracle for every optimizer, without ever making X dense."""
import copy

import numpy as np
import pytest
import scipy.sparse as sp

import fastprop as fp
from fastprop import sparse

import reference as ref

FORMATS = ["csr_matrix", "csc_matrix", "coo_matrix", "csr_array", "csc_array", "coo_array"]


def _tol(dtype):
    return dict(rtol=2e-4, atol=2e-6) if np.dtype(dtype) == np.float32 else \
        dict(rtol=1e-10, atol=1e-12)


def _data(n=120, n_in=40, density=0.08, seed=0, fmt="csr_matrix", dtype=np.float64):
    rng = np.random.default_rng(seed)
    dense = sp.random(n, n_in, density=density, format="csr", random_state=seed,
                      dtype=np.float64).toarray()
    dense[3] = 0  # an empty row
    X = getattr(sp, fmt)(dense.astype(dtype))
    y = rng.integers(0, 3, n)
    return X, dense, y


def _model(dtype, n_in=40, dropout=0.0, seed=1, hidden="tanh"):
    layers = [fp.Dense(n_in, 12, hidden)]
    if dropout:
        layers.append(fp.Dropout(dropout))
    layers += [fp.Dense(12, 3, "softmax")]
    return fp.Sequential(layers, dtype=dtype, seed=seed)


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_predicts_as_its_dense_matrix(fmt, dtype):
    X, dense, _ = _data(fmt=fmt)
    model = _model(dtype)
    np.testing.assert_allclose(model.predict(X), model.predict(dense), **_tol(dtype))


def test_reading_passes_equal_the_dense_ones(dtype):
    X, dense, y = _data(n=2500)  # more rows than a reading pass's chunk
    model = _model(dtype)
    np.testing.assert_allclose(model.predict(X), model.predict(dense), **_tol(dtype))
    for key, value in model.evaluate(X, y, "cross_entropy", ["accuracy"]).items():
        assert value == pytest.approx(model.evaluate(dense, y, "cross_entropy",
                                                     ["accuracy"])[key], rel=1e-5)
    value, grads = model.loss_and_gradients(X, y, "cross_entropy")
    value_d, grads_d = model.loss_and_gradients(dense, y, "cross_entropy")
    assert value == pytest.approx(value_d, rel=1e-6)
    for (dW, db), (dW_d, db_d) in zip(grads, grads_d):
        np.testing.assert_allclose(dW, dW_d, **_tol(dtype))
        np.testing.assert_allclose(db, db_d, **_tol(dtype))
    trace, trace_d = model.explain(X[:7], y[:7], "cross_entropy"), \
        model.explain(dense[:7], y[:7], "cross_entropy")
    for t, t_d in zip(trace.layers, trace_d.layers):
        for name in ("u", "a", "delta", "dW", "db"):
            np.testing.assert_allclose(getattr(t, name), getattr(t_d, name), **_tol(dtype))


def test_gradcheck_takes_sparse_x():
    X, _, y = _data(n=12, n_in=6, density=0.4)
    model = fp.Sequential([fp.Dense(6, 4, "tanh"), fp.Dense(4, 3, "softmax")], seed=0)
    result = fp.gradcheck(model, X, y, "cross_entropy")
    assert result.ok and result.n_checked == model.n_params and result.max_rel_error < 1e-5


OPTIMIZERS = [
    ("SGD", dict(lr=0.2), {}),
    ("SGD", dict(lr=0.1, momentum=0.9), {}),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True), {}),
    ("SGD", dict(lr=0.1, weight_decay=0.01), {}),
    ("Adam", dict(lr=0.01), {}),
    ("AdamW", dict(lr=0.01, weight_decay=0.05), {}),
    ("RMSprop", dict(lr=0.005), {}),
    ("Adam", dict(lr=0.01, clip_norm=0.5), {}),
]


@pytest.mark.parametrize("name,hp,_", OPTIMIZERS,
                         ids=[f"{n}-{'-'.join(hp)}" for n, hp, _ in OPTIMIZERS])
@pytest.mark.parametrize("weighted", [False, True], ids=["", "weighted"])
@pytest.mark.parametrize("l2", [0.0, 0.3], ids=["", "l2"])
def test_fit_on_sparse_x_equals_the_numpy_oracle(dtype, name, hp, _, weighted, l2):
    """fit on CSR rows against the oracle's float64 training on the densified matrix, in fit's
    shuffled batches, with sample weights and the L2 penalty."""
    X, dense, y = _data(n=90, seed=2)
    rng = np.random.default_rng(5)
    weights = rng.uniform(0.2, 2.0, 90) if weighted else None
    model = _model(dtype)
    start = model.get_weights()
    opt = getattr(fp, name)(**hp)
    model.fit(X, y, "softmax_cross_entropy", opt, epochs=3, batch_size=32, seed=7,
              sample_weight=weights, l2_penalty=l2)
    ref_hp = {k: v for k, v in hp.items()}
    oracle = ref.Optimizer(name, **ref_hp)
    expected, _ = ref.train(start, ["tanh", "softmax"], dense, y, "softmax_cross_entropy",
                            ref.epoch_batches(90, 32, 3, seed=7), oracle,
                            sample_weight=weights, l2=l2)
    tol = dict(rtol=2e-3, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-11)
    for layer, (W, b) in zip(model.layers, expected):
        np.testing.assert_allclose(layer.W, W, **tol)
        np.testing.assert_allclose(layer.b, b, **tol)


@pytest.mark.parametrize("opt", [fp.SGD(lr=0.1), fp.Adam(lr=0.01)], ids=["sgd", "adam"])
def test_dropout_after_the_first_layer_trains_as_dense(dtype, opt):
    X, dense, y = _data(seed=3)
    a, b = _model(dtype, dropout=0.3), _model(dtype, dropout=0.3)
    ha = a.fit(X, y, "cross_entropy", opt, epochs=3, batch_size=16, seed=1)
    hb = b.fit(dense, y, "cross_entropy", copy.deepcopy(opt), epochs=3, batch_size=16, seed=1)
    np.testing.assert_allclose(a.params, b.params, **_tol(dtype))
    np.testing.assert_allclose(ha.loss, hb.loss, rtol=1e-5)
    assert a._dropout_step == b._dropout_step


def test_plain_sgd_touches_only_the_rows_the_batch_names():
    X, dense, y = _data(n=10, n_in=30, density=0.05, seed=4)
    model = _model(np.float64, n_in=30)
    before = model.layers[0].W.copy()
    model.grads[...] = 7.0  # plain SGD updates inside the product: the buffer is not written
    model.train_step(X, y, "cross_entropy", fp.SGD(lr=0.5))
    touched = np.unique(X.tocsr().indices)
    untouched = np.setdiff1d(np.arange(30), touched)
    assert len(untouched) > 0 and len(touched) > 0
    assert np.array_equal(model.layers[0].W[untouched], before[untouched])
    assert not np.array_equal(model.layers[0].W[touched], before[touched])
    assert (model.grads == 7.0).all()
    twin = _model(np.float64, n_in=30)
    twin.train_step(dense, y, "cross_entropy", fp.SGD(lr=0.5))
    np.testing.assert_allclose(model.params, twin.params, rtol=1e-12, atol=1e-14)


def test_train_step_partial_fit_and_validation_take_sparse_x(dtype):
    X, dense, y = _data(seed=6)
    a, b = _model(dtype), _model(dtype)
    for m, data in ((a, X), (b, dense)):
        m.train_step(data[:40], y[:40], "cross_entropy", fp.Adam(lr=0.01))
    np.testing.assert_allclose(a.params, b.params, **_tol(dtype))
    ha = a.partial_fit(X, y, "cross_entropy", batch_size=16, validation_data=(X[:30], y[:30]))
    hb = b.partial_fit(dense, y, "cross_entropy", batch_size=16,
                       validation_data=(dense[:30], y[:30]))
    assert ha.val_loss[-1] == pytest.approx(hb.val_loss[-1], rel=1e-5)
    ha = a.fit(X, y, "cross_entropy", epochs=2, batch_size=16, validation_split=0.25,
               metrics=["accuracy"], callbacks=[fp.EarlyStopping(patience=5)])
    hb = b.fit(dense, y, "cross_entropy", epochs=2, batch_size=16, validation_split=0.25,
               metrics=["accuracy"], callbacks=[fp.EarlyStopping(patience=5)])
    np.testing.assert_allclose(ha.val_loss, hb.val_loss, rtol=1e-5)
    np.testing.assert_allclose(a.params, b.params, **_tol(dtype))


def test_the_compiled_fit_on_sparse_x_equals_the_epoch_by_epoch_one():
    X, _, y = _data(n=200, seed=8)
    a, b = _model(np.float64), _model(np.float64)
    a.fit(X, y, "cross_entropy", fp.Adam(lr=0.01), epochs=4, batch_size=32, seed=2)
    b.fit(X, y, "cross_entropy", fp.Adam(lr=0.01), epochs=4, batch_size=32, seed=2,
          callbacks=[fp.EarlyStopping(monitor="loss", patience=10)])
    assert np.array_equal(a.params, b.params)


def test_unsorted_and_duplicate_indices_add_up_as_scipy_sums_them(dtype):
    # rows 0 and 1: column 2 stored twice (summed), indices out of order
    values = np.array([1.0, 2.0, 0.5, -1.0, 3.0, 0.25])
    indices = np.array([2, 0, 2, 4, 1, 4])
    indptr = np.array([0, 3, 6])
    X = sp.csr_matrix((values, indices, indptr), shape=(2, 5))
    assert not X.has_canonical_format
    canonical = X.copy()
    canonical.sum_duplicates()
    model = fp.Sequential([fp.Dense(5, 3, "tanh"), fp.Dense(3, 2, "softmax")], dtype=dtype,
                          seed=0)
    np.testing.assert_allclose(model.predict(X), model.predict(canonical.toarray()),
                               **_tol(dtype))
    y = np.array([0, 1])
    g = model.loss_and_gradients(X, y, "cross_entropy")[1][0][0]
    np.testing.assert_allclose(g, model.loss_and_gradients(canonical, y, "cross_entropy")[1][0][0],
                               **_tol(dtype))


@pytest.mark.parametrize("call", ["predict", "fit", "evaluate", "validation"])
def test_bad_sparse_input_is_refused_naming_the_argument(call):
    model = _model(np.float64)
    X, _, y = _data()
    wrong = sp.random(120, 39, density=0.1, format="csr", random_state=0)
    nan = X.copy().tocsr()
    nan.data[5] = np.nan
    for bad, message in ((wrong, "40 columns"), (nan, "NaN")):
        name = "validation_data[0]" if call == "validation" else "X"
        with pytest.raises(ValueError, match=r"^" + name.replace("[", r"\[").replace("]", r"\]")
                           + ".*" + message):
            if call == "predict":
                model.predict(bad)
            elif call == "fit":
                model.fit(bad, y, "cross_entropy")
            elif call == "evaluate":
                model.evaluate(bad, y, "cross_entropy")
            else:
                model.fit(X, y, "cross_entropy", validation_data=(bad, y))


def test_malformed_csr_is_refused_before_any_pass():
    model = _model(np.float64, n_in=5)
    out_of_range = sp.csr_matrix((np.ones(2), np.array([1, 7]), np.array([0, 1, 2])),
                                 shape=(2, 5), copy=False)
    with pytest.raises(ValueError, match=r"^X: expected column indices in \[0, 5\)"):
        model.predict(out_of_range)
    model2 = _model(np.float64, n_in=5)
    wide = sp.csr_matrix((np.ones(2), np.array([1, 2], np.int64), np.array([0, 1, 2])),
                         shape=(2, 5))
    wide.indices = np.array([1, 2**32 + 1], np.int64)  # would wrap to 1 as int32
    with pytest.raises(ValueError, match="column indices"):
        model2.predict(wide)
    with pytest.raises(ValueError, match="X.indptr|row pointers"):
        model2._engine_for(2).predict(sparse.CSR(np.ones(1), np.array([1], np.int32),
                                                 np.array([0, 2, 1]), (2, 5)),
                                      np.empty((2, 3)))


def test_integer_and_float64_data_is_cast_once_and_csr_of_the_dtype_is_not_copied():
    X, dense, y = _data()
    ints = sp.csr_matrix((dense * 4).round().astype(np.int64))
    model = _model(np.float32)
    np.testing.assert_allclose(model.predict(ints), model.predict(ints.toarray()), rtol=1e-5)
    f32 = sp.csr_matrix(dense.astype(np.float32))
    f32.indptr = f32.indptr.astype(np.int64)
    checked = sparse.check_sparse("X", f32, np.float32, 40)
    assert np.shares_memory(checked.values, f32.data)
    assert np.shares_memory(checked.indices, f32.indices)
    assert np.shares_memory(checked.indptr, f32.indptr)
    assert sparse.check_sparse("X", checked, np.float32, 40) is checked


def test_the_engine_never_makes_sparse_x_dense():
    """A 200,000-column CSR matrix trains with a workspace of batch buffers: a gathered dense
    batch alone would be 32 x 200,000 values."""
    import tracemalloc
    n_in = 200_000
    X = sp.random(64, n_in, density=1e-4, format="csr", random_state=0, dtype=np.float32)
    y = np.arange(64) % 3
    model = fp.Sequential([fp.Dense(n_in, 4, "relu"), fp.Dense(4, 3, "softmax")], seed=0)
    tracemalloc.start()
    model.fit(X, y, "cross_entropy", fp.SGD(lr=0.1), epochs=2, batch_size=32)
    model.predict(X)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 32 * n_in * 4 / 4, peak


def test_estimators_train_on_sparse_x_as_on_dense():
    pytest.importorskip("sklearn")
    from fastprop.sklearn import MLPClassifier, MLPRegressor
    X, dense, y = _data(n=150, seed=9)
    for solver in ("sgd", "adam", "lbfgs"):
        kw = dict(hidden_layer_sizes=(8,), solver=solver, max_iter=5, random_state=0,
                  dtype="float64")
        with pytest.warns(Warning):
            a = MLPClassifier(**kw).fit(X, y)
            b = MLPClassifier(**kw).fit(dense, y)
        np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(dense), rtol=1e-8)
        with pytest.warns(Warning):
            r = MLPRegressor(**kw).fit(sp.csc_array(X), y.astype(float))
            s = MLPRegressor(**kw).fit(dense, y.astype(float))
        np.testing.assert_allclose(r.predict(X), s.predict(dense), rtol=1e-8, atol=1e-10)

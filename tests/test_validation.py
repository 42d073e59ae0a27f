"""Bad input raises a clear ValueError or TypeError naming the argument; good input in any
form (lists, C or Fortran order, strided views, read-only) gives the same result."""
import numpy as np
import pytest

import fastprop as fp
import fastprop.kernels as K
from helpers import LAYOUTS, layouts


@pytest.fixture
def model():
    return fp.Sequential([fp.Dense(3, 5, "relu"), fp.Dense(5, 2, "sigmoid")], seed=0)


@pytest.fixture
def clf():
    return fp.Sequential([fp.Dense(3, 4, "tanh"), fp.Dense(4, 3, "softmax")], seed=0)


X3 = np.random.default_rng(0).normal(size=(6, 3))
Y2 = np.random.default_rng(1).random((6, 2))


@pytest.mark.parametrize("X,exc,words", [
    (np.ones(3), ValueError, ["X", "2-D", "1-D"]),
    (np.ones((2, 3, 1)), ValueError, ["X", "2-D", "3-D"]),
    (np.ones((6, 4)), ValueError, ["X", "3 columns", "(6, 4)"]),
    (np.ones((0, 3)), ValueError, ["X", "empty"]),
    (np.array([["a", "b", "c"]] * 6), TypeError, ["X", "numeric", "<U1"]),
    (np.ones((6, 3), dtype=complex), TypeError, ["X", "numeric", "complex128"]),
    (np.where(np.eye(6, 3) > 0, np.nan, 1.0), ValueError, ["X", "finite", "NaN"]),
    (np.where(np.eye(6, 3) > 0, np.inf, 1.0), ValueError, ["X", "finite"]),
    ([[1, 2, 3], [4, 5]], ValueError, ["X", "rectangular"]),
])
def test_bad_X(model, X, exc, words):
    for call in (lambda: model.predict(X), lambda: model.fit(X, Y2, "mse"),
                 lambda: model.loss_and_gradients(X, Y2, "mse")):
        with pytest.raises(exc) as info:
            call()
        for w in words:
            assert w in str(info.value), (w, str(info.value))


@pytest.mark.parametrize("y,exc,words", [
    (np.ones((5, 2)), ValueError, ["y", "6 rows", "(5, 2)"]),
    (np.ones((6, 3)), ValueError, ["y", "(6, 2)", "(6, 3)"]),
    (np.ones(6), ValueError, ["y", "(6, 2)", "(6,)"]),
    (np.full((6, 2), np.nan), ValueError, ["y", "finite"]),
    (np.ones((6, 2, 1)), ValueError, ["y", "1-D or 2-D"]),
    (np.array([["x", "y"]] * 6), TypeError, ["y", "numeric"]),
])
def test_bad_y_regression(model, y, exc, words):
    with pytest.raises(exc) as info:
        model.loss_and_gradients(X3, y, "mse")
    for w in words:
        assert w in str(info.value)


def test_bad_targets_for_classification(model, clf):
    with pytest.raises(ValueError, match=r"y: expected targets in \[0, 1\]"):
        model.loss_and_gradients(X3, Y2 * 3, "binary_cross_entropy")
    with pytest.raises(ValueError, match=r"y: expected class labels in \[0, 2\].*from 0 to 3"):
        clf.fit(X3, [0, 1, 2, 3, 0, 1], "softmax_cross_entropy")
    with pytest.raises(ValueError, match=r"y: expected class labels in \[0, 2\].*from -1"):
        clf.evaluate(X3, [0, 1, 2, -1, 0, 1], "softmax_cross_entropy")
    with pytest.raises(ValueError, match="y: expected integer class labels"):
        clf.fit(X3, [0, 1.5, 2, 1, 0, 1], "softmax_cross_entropy")


def test_loss_must_suit_the_output(model, clf):
    with pytest.raises(ValueError, match="loss: expected one of"):
        model.fit(X3, Y2, "hinge")
    with pytest.raises(TypeError, match="loss: expected a name"):
        model.fit(X3, Y2, 3)
    with pytest.raises(ValueError, match="needs an output layer with activation='softmax'"):
        model.fit(X3, Y2, "softmax_cross_entropy")
    with pytest.raises(ValueError, match="softmax output is only supported with"):
        clf.fit(X3, np.eye(3)[[0, 1, 2, 0, 1, 2]], "mse")
    relu_out = fp.Sequential([fp.Dense(3, 1, "relu")])
    with pytest.raises(ValueError, match="needs an output layer with activation='sigmoid'"):
        relu_out.fit(X3, np.ones(6), "binary_cross_entropy")


@pytest.mark.parametrize("lr", [0, -0.1, float("nan"), float("inf")])
def test_bad_learning_rate(lr):
    with pytest.raises(ValueError, match="lr: expected a positive finite number"):
        fp.SGD(lr=lr)
    with pytest.raises(ValueError, match="lr"):
        K.sgd_update(np.zeros(3), np.zeros(3), lr)


def test_bad_fit_arguments(model):
    with pytest.raises(ValueError, match="epochs: expected a positive integer, got 0"):
        model.fit(X3, Y2, "mse", epochs=0)
    with pytest.raises(ValueError, match="batch_size: expected a positive integer, got -5"):
        model.fit(X3, Y2, "mse", batch_size=-5)
    with pytest.raises(ValueError, match="batch_size"):
        model.fit(X3, Y2, "mse", batch_size=2.5)
    with pytest.raises(TypeError, match="optimizer: expected an optimizer"):
        model.fit(X3, Y2, "mse", optimizer="sgd")


def test_bad_model_construction():
    with pytest.raises(ValueError, match=r"layers\[1\]: expected n_in=4 .*got n_in=5"):
        fp.Sequential([fp.Dense(2, 4), fp.Dense(5, 1)])
    with pytest.raises(ValueError, match="layers: expected at least one layer"):
        fp.Sequential([])
    with pytest.raises(TypeError, match=r"layers\[0\]: expected a fastprop.Dense"):
        fp.Sequential(["dense"])
    with pytest.raises(TypeError, match="dtype: expected 'float32' or 'float64', got 'int32'"):
        fp.Sequential([fp.Dense(2, 1)], dtype="int32")
    with pytest.raises(ValueError, match="activation: expected one of"):
        fp.Dense(2, 1, activation="no_such_activation")
    with pytest.raises(ValueError, match="n_out: expected a positive integer, got 0"):
        fp.Dense(2, 0)
    with pytest.raises(ValueError, match="softmax is only supported as the output"):
        fp.Sequential([fp.Dense(2, 3, "softmax"), fp.Dense(3, 1)])
    layer = fp.Dense(2, 2)
    with pytest.raises(RuntimeError, match="not part of a model yet"):
        layer.W
    fp.Sequential([layer])
    with pytest.raises(ValueError, match="already belongs to a model"):
        fp.Sequential([layer])


def test_bad_weights(model):
    with pytest.raises(ValueError, match=r"W: expected shape \(3, 5\), got shape \(5, 3\)"):
        model.layers[0].W = np.ones((5, 3))
    with pytest.raises(ValueError, match="b: expected finite values"):
        model.layers[0].b = np.full(5, np.nan)
    with pytest.raises(ValueError, match="weights: expected 2"):
        model.set_weights([(np.ones((3, 5)), np.ones(5))])


def test_bad_kernel_arguments():
    with pytest.raises(TypeError, match="W: expected a float32 or float64 array, got dtype 'int64'"):
        K.forward(np.ones((2, 2)), np.ones((2, 2), dtype=np.int64), np.ones(2))
    with pytest.raises(ValueError, match=r"b: expected shape \(3,\), got shape \(2,\)"):
        K.forward(np.ones((2, 2)), np.ones((2, 3)), np.ones(2))
    with pytest.raises(ValueError, match="out: expected a float64 array of shape"):
        K.forward(np.ones((2, 2)), np.ones((2, 3)), np.ones(3), out=np.empty((2, 2)))
    with pytest.raises(ValueError, match="A_prev: expected 3 rows"):
        K.delta(np.ones((3, 2)), np.ones((4, 2)), np.ones((2, 4)), "relu")
    with pytest.raises(ValueError, match="activation_prev: softmax"):
        K.delta(np.ones((3, 2)), np.ones((4, 2)), np.ones((3, 4)), "softmax")
    with pytest.raises(ValueError, match="accumulate: expected dW and db"):
        K.weight_gradient(np.ones((3, 2)), np.ones((3, 2)), accumulate=True)
    with pytest.raises(ValueError, match="grads: expected shape"):
        K.sgd_update(np.zeros(3), np.zeros(4), 0.1)


@pytest.mark.parametrize("layout", LAYOUTS + ["list"])
def test_any_input_layout_gives_the_same_result(dtype, layout):
    model = fp.Sequential([fp.Dense(3, 4, "tanh"), fp.Dense(4, 2, "identity")],
                          dtype=dtype, seed=0)
    X = np.random.default_rng(5).normal(size=(9, 3))
    y = np.random.default_rng(6).normal(size=(9, 2))
    Xl = X.tolist() if layout == "list" else layouts(X)[layout]
    yl = y.tolist() if layout == "list" else layouts(y)[layout]
    want_pred = model.predict(X)
    want_loss, want_grads = model.loss_and_gradients(X, y, "mse")
    np.testing.assert_array_equal(model.predict(Xl), want_pred)
    loss, grads = model.loss_and_gradients(Xl, yl, "mse")
    assert loss == want_loss
    for (dW, db), (wdW, wdb) in zip(grads, want_grads):
        np.testing.assert_allclose(dW, wdW, rtol=1e-6 if dtype == np.float32 else 1e-14)
        np.testing.assert_array_equal(db, wdb)
    # integer and bool inputs are numbers too
    np.testing.assert_allclose(model.predict(np.ones((2, 3), dtype=np.int16)),
                               model.predict(np.ones((2, 3))), rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("order", ["C", "F"])
def test_value_range_is_numpys_min_and_max(dtype, order):
    """The one-pass bounds that targets are checked by: numpy's min and max, NaN when any value
    is NaN, infinities as they are."""
    from fastprop._kernels import _value_range
    rng = np.random.default_rng(3)
    for shape in [(1, 1), (7, 3), (1000, 5), (3, 1001)]:
        a = np.asarray(rng.normal(size=shape) * 1e3, dtype=dtype, order=order)
        assert _value_range(a) == (float(a.min()), float(a.max()))
        for bad in (np.inf, -np.inf, np.nan):
            b = a.copy(order=order)
            b.flat[rng.integers(b.size)] = bad
            lo, hi = _value_range(b)
            if np.isnan(bad):
                assert np.isnan(lo) and np.isnan(hi)
            else:
                assert (lo, hi) == (float(b.min()), float(b.max()))
    with pytest.raises(ValueError, match="contiguous"):
        _value_range(np.ones((4, 4), dtype)[::2])
    with pytest.raises(TypeError, match="float32 or float64"):
        _value_range(np.ones(3, np.int64))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_found_anywhere(dtype, bad):
    """X already in the model's dtype and layout takes the short way in; a NaN or inf in its
    last value, or in y's, is still refused, naming the argument and the count."""
    model = fp.Sequential([fp.Dense(3, 4, "tanh"), fp.Dense(4, 1, "sigmoid")], dtype=dtype, seed=0)
    X = np.random.default_rng(0).normal(size=(50, 3)).astype(dtype)
    y = (X[:, :1] > 0).astype(dtype)
    Xb, yb = X.copy(), y.copy()
    Xb[-1, -1], yb[-1, 0] = bad, bad
    before = model.params.copy()
    for call, name in ((lambda: model.fit(Xb, y, "binary_cross_entropy"), "X"),
                       (lambda: model.fit(X, yb, "binary_cross_entropy"), "y"),
                       (lambda: model.predict(Xb), "X")):
        with pytest.raises(ValueError, match=rf"^{name}: expected finite values, got 1 NaN or inf"):
            call()
    yb[-1, 0] = np.nextafter(np.asarray(1, dtype), np.asarray(2, dtype))  # just above 1
    with pytest.raises(ValueError, match=r"y: expected targets in \[0, 1\]"):
        model.fit(X, yb, "binary_cross_entropy")
    assert np.array_equal(before, model.params)


def test_byte_swapped_arrays_are_read_as_their_values():
    """Non-native byte order is converted by the checks, and the engine itself refuses it."""
    X = np.random.default_rng(0).normal(size=(40, 3))
    y = np.random.default_rng(1).random((40, 2))
    models = [fp.Sequential([fp.Dense(3, 5, "relu"), fp.Dense(5, 2, "sigmoid")], dtype="float64",
                            seed=0) for _ in range(2)]
    models[0].fit(X, y, "mse", fp.SGD(0.1), epochs=3, batch_size=8, seed=1)
    models[1].fit(X.astype(">f8"), y.astype(">f8"), "mse", fp.SGD(0.1), epochs=3, batch_size=8,
                  seed=1)
    assert np.array_equal(models[0].params, models[1].params)
    engine = models[0]._engine_for(40)
    with pytest.raises(ValueError, match="X: expected a non-empty C-contiguous float64"):
        engine.predict(X.astype(">f8"), np.empty((40, 2)))

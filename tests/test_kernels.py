"""Each compiled kernel against its NumPy reference, over dtype x shape x memory layout."""
import numpy as np
import pytest

import fastprop.kernels as K
import reference as ref
from helpers import LAYOUTS, layouts, tol

ACTS = ["identity", "sigmoid", "tanh", "relu", "leaky_relu"]
SHAPES = [(1, 1, 1), (5, 3, 4), (64, 17, 33), (3, 128, 2), (200, 8, 1)]  # (n, n_in, n_out)


def data(shape, dtype, seed=0):
    n, n_in, n_out = shape
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_in)).astype(dtype)
    W = rng.normal(size=(n_in, n_out)).astype(dtype)
    b = rng.normal(size=n_out).astype(dtype)
    return X, W, b


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("act", ACTS + ["softmax"])
@pytest.mark.parametrize("x_layout", LAYOUTS)
@pytest.mark.parametrize("w_layout", ["C", "F"])
def test_forward(dtype, shape, act, x_layout, w_layout):
    X, W, b = data(shape, dtype)
    Z_ref, A_ref = ref.forward(X.astype(float), W.astype(float), b.astype(float), act, 0.05)
    Z, A = K.forward(layouts(X)[x_layout], layouts(W)[w_layout], b, act, negative_slope=0.05,
                     Z_out=True)
    assert A.dtype == dtype and Z.dtype == dtype
    np.testing.assert_allclose(Z, Z_ref, **tol(dtype))
    np.testing.assert_allclose(A, A_ref, **tol(dtype))
    A_only = K.forward(X, W, b, act, negative_slope=0.05)  # in place: Z written into A
    np.testing.assert_allclose(A_only, A_ref, **tol(dtype))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_delta(dtype, shape, act, layout):
    n, n_in, n_out = shape
    rng = np.random.default_rng(1)
    dZ = rng.normal(size=(n, n_out)).astype(dtype)
    W = rng.normal(size=(n_in, n_out)).astype(dtype)
    Z_prev = rng.normal(size=(n, n_in))
    A_prev = ref.activation(Z_prev, act, 0.05).astype(dtype)
    got = K.delta(layouts(dZ)[layout], layouts(W)[layout], layouts(A_prev)[layout], act,
                  negative_slope=0.05)
    want = ref.delta(dZ.astype(float), W.astype(float), Z_prev, act, 0.05)
    if dtype == np.float32 and act == "sigmoid":
        # f' is computed through a = f(z) in float32: a (1 - a) loses digits where a is near 1.
        np.testing.assert_allclose(got, want, rtol=2e-3, atol=2e-5)
    else:
        np.testing.assert_allclose(got, want, **tol(dtype))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_weight_gradient(dtype, shape, layout):
    n, n_in, n_out = shape
    rng = np.random.default_rng(2)
    A_prev = rng.normal(size=(n, n_in)).astype(dtype)
    dZ = rng.normal(size=(n, n_out)).astype(dtype)
    dW, db = K.weight_gradient(layouts(A_prev)[layout], layouts(dZ)[layout])
    dW_ref, db_ref = ref.weight_gradient(A_prev.astype(float), dZ.astype(float))
    np.testing.assert_allclose(dW, dW_ref, **tol(dtype))
    np.testing.assert_allclose(db, db_ref, **tol(dtype))
    # accumulate adds to the buffers it is given
    dW2, db2 = K.weight_gradient(A_prev, dZ, dW=dW, db=db, accumulate=True)
    assert dW2 is dW and db2 is db
    np.testing.assert_allclose(dW, 2 * dW_ref, **tol(dtype))
    np.testing.assert_allclose(db, 2 * db_ref, **tol(dtype))


LOSS_CASES = [("mse", "identity"), ("mse", "sigmoid"), ("mse", "tanh"),
              ("half_squared_error", "identity"), ("half_squared_error", "relu"),
              ("binary_cross_entropy", "sigmoid"), ("softmax_cross_entropy", "softmax"),
              ("mae", "identity"), ("mae", "tanh"), ("huber", "identity"), ("huber", "sigmoid"),
              ("multilabel_binary_cross_entropy", "sigmoid")]


def targets(loss, n, m, rng, labels=False):
    if loss in ("binary_cross_entropy", "multilabel_binary_cross_entropy"):
        return (rng.random((n, m)) > 0.5).astype(float)
    if loss == "softmax_cross_entropy":
        lab = rng.integers(0, m, size=n)
        return lab if labels else np.eye(m)[lab]
    return rng.normal(scale=2.0, size=(n, m))


@pytest.mark.parametrize("loss,act,labels",
                         [c + (False,) for c in LOSS_CASES]
                         + [("softmax_cross_entropy", "softmax", True)])
@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (100, 10)])
def test_loss_gradient(dtype, loss, act, shape, labels):
    n, m = shape
    rng = np.random.default_rng(3)
    Z = rng.normal(scale=3, size=(n, m))
    A = ref.activation(Z, act)
    Y = targets(loss, n, m, rng, labels)
    value, dZ, _ = K.loss_gradient(loss, Z.astype(dtype), A.astype(dtype), Y, act)
    value_ref, dZ_ref = ref.loss_and_output_delta(loss, Z, A, Y, act)
    np.testing.assert_allclose(value, value_ref, rtol=1e-5 if dtype == np.float32 else 1e-12)
    np.testing.assert_allclose(dZ, dZ_ref, **tol(dtype))


@pytest.mark.parametrize("logit", [1000.0, -1000.0, 88.0, -88.0, 1e-7])
def test_cross_entropies_are_finite_at_extreme_logits(dtype, logit):
    Z = np.array([[logit], [logit]], dtype)
    Y = np.array([[1.0], [0.0]])
    value, dZ, _ = K.loss_gradient("bce", Z, np.zeros_like(Z), Y, "sigmoid")
    # exact: -log sigmoid(z) for y = 1, -log sigmoid(-z) for y = 0, from log-add-exp
    want = (np.logaddexp(0, -logit) + np.logaddexp(0, logit)) / 2
    assert np.isfinite(value) and np.all(np.isfinite(dZ))
    np.testing.assert_allclose(value, want, rtol=1e-6)
    p = np.exp(-np.logaddexp(0, -logit))  # sigmoid(z) without overflow
    np.testing.assert_allclose(dZ.ravel(), [(p - 1) / 2, p / 2], rtol=1e-5, atol=1e-30)
    # softmax CE with logits (z, 0) and label 1: log(1 + e^z), finite for z = +-1000
    Z2 = np.array([[logit, 0.0]], dtype)
    value2, dZ2, _ = K.loss_gradient("softmax_cross_entropy", Z2, Z2, [1], "softmax")
    np.testing.assert_allclose(value2, np.logaddexp(logit, 0.0), rtol=1e-6, atol=1e-30)
    np.testing.assert_allclose(dZ2.ravel(), [p, -p], rtol=1e-5, atol=1e-30)


def test_loss_counts_correct_predictions(dtype):
    Z = np.array([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [0.0, 0.0, 1.0], [5.0, 0.0, 0.0]], dtype)
    _, _, n_correct = K.loss_gradient("softmax_cross_entropy", Z, Z, [0, 1, 0, 1], "softmax")
    assert n_correct == 2
    Zb = np.array([[2.0], [-1.0], [0.5]], dtype)
    _, _, n_correct = K.loss_gradient("bce", Zb, Zb, [[1.0], [1.0], [0.0]], "sigmoid")
    assert n_correct == 1


@pytest.mark.parametrize("n", [1, 7, 1000])
def test_sgd_update(dtype, n):
    rng = np.random.default_rng(4)
    p = rng.normal(size=n).astype(dtype)
    g = rng.normal(size=n).astype(dtype)
    want = p.astype(float) - 0.3 * g.astype(float)
    out = K.sgd_update(p, g, 0.3)
    assert out is p
    np.testing.assert_allclose(p, want, **tol(dtype))


def test_kernels_release_the_gil():
    # A thread running a long kernel must not stop this thread from running Python.
    import threading
    import time

    X = np.random.default_rng(0).normal(size=(1500, 1500))
    done = threading.Event()
    ticks = []

    def work():
        for _ in range(4):
            K.forward(X, X, np.zeros(1500), "tanh")
        done.set()

    t = threading.Thread(target=work)
    t.start()
    while not done.is_set():
        ticks.append(time.perf_counter())
        time.sleep(0.001)
    t.join()
    # with the GIL held for each kernel, this loop would be starved into a handful of ticks
    assert len(ticks) >= 10


@pytest.mark.parametrize("act", ["sigmoid", "softmax"])
def test_exp_based_activations_are_accurate_over_the_whole_range(dtype, act):
    # the vectorized exp: within a few units in the last place wherever the result is a normal
    # number, 0 below that (flush to zero), never NaN or a negative number
    z = np.linspace(-120, 120, 480001).astype(dtype)  # the reference sees the same rounded input
    tiny, eps = np.finfo(dtype).tiny, np.finfo(dtype).eps
    if act == "sigmoid":
        got = K.forward(z.reshape(-1, 1).astype(dtype), np.ones((1, 1), dtype), np.zeros(1, dtype),
                        "sigmoid").ravel()
        want = 1 / (1 + np.exp(-z.astype(np.longdouble)))
    else:  # softmax over (z, 0): its first column is sigmoid(z) computed through exp(z - max)
        Z = np.stack([z, np.zeros_like(z)], axis=1).astype(dtype)
        got = K.forward(Z, np.eye(2, dtype=dtype), np.zeros(2, dtype), "softmax")[:, 0]
        want = 1 / (1 + np.exp(-z.astype(np.longdouble)))
    assert np.all(np.isfinite(got)) and np.all(got >= 0)
    normal = want > 4 * tiny
    rel = np.abs((got[normal] - want[normal]) / want[normal])
    assert rel.max() <= 4 * eps, float(rel.max() / eps)
    assert np.all(got[~normal] <= 4 * tiny)


def test_the_vectorized_tanh_is_within_a_few_ulp(dtype):
    # dense around the switch at |x| = 1/2 between the series and 1 - 2 / (exp(2|x|) + 1)
    z = np.concatenate([np.linspace(-25, 25, 500001), np.linspace(-0.6, 0.6, 240001),
                        [0.5, -0.5, 1e-30, -1e-30, 0.0, 1e4, -1e4]]).astype(dtype)
    got = K.forward(z.reshape(-1, 1), np.ones((1, 1), dtype), np.zeros(1, dtype), "tanh").ravel()
    want = np.tanh(z.astype(np.longdouble))
    ulps = np.abs(got - want) / np.spacing(np.abs(want).astype(dtype)).astype(np.longdouble)
    assert float(np.max(np.where(want == 0, 0, ulps))) <= 4
    assert np.all(np.abs(got) <= 1) and got[-1] == -1 and got[-2] == 1


# Narrow layers take csrc/small.h's loops instead of BLAS: every width they are compiled for
# (1-8 outputs, 1-8 inputs of one output) and the runtime widths above, with row counts that
# leave each remainder of their four-sample chains, against BLAS (NumPy's matmul) and float64.
SMALL_SHAPES = [(K, M) for K in (1, 2, 3, 4, 5, 8) for M in (1, 2, 3, 4, 6, 7, 8)] + \
    [(2, 16), (3, 12), (1, 40), (4, 16), (16, 4), (9, 7), (63, 1), (64, 1), (32, 2), (1, 64)]


def _small_tol(dtype, K):
    # a sum of K products (or n, for the weight gradient) in another order than BLAS's
    return dict(rtol=1e-12, atol=1e-12) if dtype == np.float64 else dict(rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("K,M", SMALL_SHAPES)
@pytest.mark.parametrize("n", [1, 3, 4, 6, 101])
def test_small_products_match_blas(dtype, K, M, n):
    from fastprop import _kernels as C
    rng = np.random.default_rng(K * 100 + M + n)
    A = rng.normal(size=(n, K)).astype(dtype)
    W = rng.normal(size=(K, M)).astype(dtype)
    dZ = rng.normal(size=(n, M)).astype(dtype)
    t = _small_tol(dtype, K)
    Z = np.full((n, M), np.nan, dtype)
    C._small_product(A, W, Z, False)
    np.testing.assert_allclose(Z, A @ W, **t)
    np.testing.assert_allclose(Z, A.astype(float) @ W.astype(float), **t)
    dA = np.full((n, K), np.nan, dtype)
    C._small_product(dZ, W, dA, True)
    np.testing.assert_allclose(dA, dZ @ W.T, **t)
    # dW = A^T dZ (dW not read with beta 0: NaN there stays out), db = the column sums
    dW = np.full((K, M), np.nan, dtype)
    db = np.full(M, np.nan, dtype)
    C._small_weight_gradient(A, dZ, dW, db, 1.0, 0.0, False)
    np.testing.assert_allclose(dW, A.T @ dZ, **t)
    np.testing.assert_allclose(db, dZ.sum(axis=0), **t)
    # plain SGD's form: W += -lr A^T dZ, and the bias sums accumulated
    W2, db2 = W.copy(), db.copy()
    C._small_weight_gradient(A, dZ, W2, db2, -0.1, 1.0, True)
    np.testing.assert_allclose(W2, W - dtype(0.1) * (A.T @ dZ), **t)
    np.testing.assert_allclose(db2, 2 * dZ.sum(axis=0), **t)


def test_small_products_are_taken_for_narrow_layers_only():
    from fastprop import _kernels as C
    assert C._small_layer(2, 4) and C._small_layer(4, 1) and C._small_layer(64, 1)
    assert C._small_layer(4, 8) and not C._small_layer(8, 8) and not C._small_layer(65, 1)
    assert not C._small_layer(784, 256) and not C._small_layer(0, 4)
    with pytest.raises(ValueError, match="at most 64 weights"):
        C._small_product(np.ones((3, 65)), np.ones((65, 1)), np.ones((3, 1)), False)
    with pytest.raises(ValueError, match="out"):
        C._small_product(np.ones((3, 2)), np.ones((2, 4)), np.ones((4, 4)), False)
    with pytest.raises(ValueError, match="A"):
        C._small_product(np.ones((3, 2)), np.ones((2, 4)), np.ones((3, 2)), True)


@pytest.mark.parametrize("act", ACTS)
def test_a_narrow_layer_through_the_public_kernels_matches_a_wide_one(dtype, act):
    # the same product through csrc/small.h (C-ordered W) and BLAS (Fortran-ordered W)
    X, W, b = data((50, 4, 3), dtype, seed=7)
    Z1, A1 = K.forward(X, W, b, act, negative_slope=0.05, Z_out=True)
    Z2, A2 = K.forward(X, np.asfortranarray(W), b, act, negative_slope=0.05, Z_out=True)
    np.testing.assert_allclose(Z1, Z2, **_small_tol(dtype, 4))
    np.testing.assert_allclose(A1, A2, **_small_tol(dtype, 4))

# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""fastprop's compiled kernels: BLAS for the matrix products, the C loops of csrc/ for the rest.

The cdef kernels (declared in _kernels.pxd) run without the GIL and never allocate; the engine
(_engine.pyx) composes them into training steps. Each has a thin ``def`` twin with a leading
underscore that releases the GIL around it, for fastprop.kernels, which checks the arrays first
(C-contiguous, one dtype, matching shapes, no overlap between inputs and outputs).
"""
from libc.limits cimport INT_MAX
from libc.math cimport NAN
from libc.stdint cimport int64_t, uint64_t
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy
from scipy.linalg.cython_blas cimport sgemm, dgemm, saxpy, daxpy

import enum

import numpy as np
cimport numpy as cnp

cnp.import_array()

C_INT_MAX = INT_MAX  # the largest dimension the kernels (and BLAS) take
# how many codes of each kind there are: a code is valid when 0 <= code < its count
N_CODES = {"dtype": FP_N_DTYPES, "activation": FP_N_ACTIVATIONS, "loss": FP_N_LOSSES,
           "optimizer": FP_N_OPTIMIZERS}


cdef dict _names(str kind):
    """{C name: code} of every row of the activation or the loss table."""
    cdef fp_activation_info act
    cdef fp_loss_info los
    cdef int code, status
    names = {}
    for code in range(N_CODES[kind]):
        if kind == "activation":
            status = fp_activation_describe(code, &act)
            name = act.name if status == FP_OK else None
        else:
            status = fp_loss_describe(code, &los)
            name = los.name if status == FP_OK else None
        if name is None:
            raise ImportError(f"fastprop._kernels: {kind} code {code} has no row")
        names[name.decode()] = code
    return names


# The codes of the C tables, by their C names (fp_activation.FP_GELU, fp_loss.FP_LOSS_MSE)
fp_activation = enum.IntEnum("fp_activation", _names("activation"))
fp_loss = enum.IntEnum("fp_loss", _names("loss"))


# ---------------------------------------------------------------------------------------------
# Codes: one check per kind, against the count its enum ends with; and the C status.

cdef int _check_code(int code, int count, str what) except -1:
    if not 0 <= code < count:
        raise ValueError(f"{what}: unknown code {code} (expected 0 to {count - 1})")
    return 0


cdef int check_activation(int code) except -1:
    return _check_code(code, FP_N_ACTIVATIONS, "activation")


cdef int check_loss(int code) except -1:
    return _check_code(code, FP_N_LOSSES, "loss")


cdef int check_optimizer(int kind) except -1:
    return _check_code(kind, FP_N_OPTIMIZERS, "optimizer kind")


cdef int check_status(int status, str what, int code) except -1:
    if status == FP_ERR_CODE:
        raise ValueError(f"{what}: code {code} is unknown or not valid here")
    if status != FP_OK:
        raise ValueError(f"{what}: the kernel refused its arguments (status {status})")
    return 0


# ---------------------------------------------------------------------------------------------
# The BLAS call: the only place where float and double part ways.

cdef void gemm(bint trans_a, bint trans_b, int m, int n, int k, floating alpha,
               const floating *A, int lda, const floating *B, int ldb,
               floating beta, floating *C, int ldc) noexcept nogil:
    # Column-major BLAS sees a row-major matrix as its transpose, so C^T = op(B)^T op(A)^T:
    # swap the operands and the dimensions, keep the transpose flags.
    cdef char ta = b'T' if trans_a else b'N'
    cdef char tb = b'T' if trans_b else b'N'
    if m <= 0 or n <= 0:
        return
    if floating is float:
        sgemm(&tb, &ta, &n, &m, &k, &alpha, <float *>B, &ldb, <float *>A, &lda, &beta, C, &ldc)
    else:
        dgemm(&tb, &ta, &n, &m, &k, &alpha, <double *>B, &ldb, <double *>A, &lda, &beta, C, &ldc)


cdef void axpy(Py_ssize_t n, floating alpha, const floating *x, floating *y) noexcept nogil:
    cdef int one = 1, m
    while n > 0:  # BLAS counts in ints
        m = <int>(n if n < 1073741824 else 1073741824)
        if floating is float:
            saxpy(&m, &alpha, <float *>x, &one, y, &one)
        else:
            daxpy(&m, &alpha, <double *>x, &one, y, &one)
        x += m
        y += m
        n -= m


cdef double sum_of_squares(Py_ssize_t n, const floating *x) noexcept nogil:
    # the C kernel, not BLAS's dot: a memory-bound pass that BLAS would share out to threads
    # woken for it (and those of OpenMP, still spinning after an optimizer pass, fight them)
    cdef double total = 0
    fp_sum_of_squares(dtype_of(x), x, n, &total)
    return total


# ---------------------------------------------------------------------------------------------
# The three kernels of the chain rule.

cdef int forward_layer(const floating *X, int ldx, bint trans_x,
                       const floating *W, int ldw, bint trans_w,
                       const floating *b, floating *Z, floating *A,
                       int n_samples, int n_in, int n_out,
                       int activation, double param) noexcept nogil:
    # Z = X W by BLAS (or, for a narrow layer, csrc/small.h), then one fused pass: Z += b,
    # A = f(Z).
    cdef floating *out = Z if Z != NULL else A
    if not trans_x and not trans_w and ldx == n_in and ldw == n_out \
            and fp_small_layer(n_in, n_out):
        fp_small_forward(dtype_of(A), X, W, out, n_samples, n_in, n_out)
    else:
        gemm(trans_x, trans_w, n_samples, n_out, n_in, <floating>1, X, ldx, W, ldw,
             <floating>0, out, n_out)
    return fp_bias_activation(dtype_of(A), out, A, b, n_samples, n_out, activation, param)


cdef int delta_layer(const floating *dZ, int ldd, bint trans_d,
                     const floating *W, int ldw, bint trans_w,
                     const floating *A_prev, const floating *Z_prev, const floating *mask_prev,
                     floating *dZ_prev, int n_samples, int n_in, int n_out,
                     int activation_prev, double param) noexcept nogil:
    # dA_prev = dZ W^T by BLAS (or csrc/small.h), the dropout mask's factor, then
    # dZ_prev = dA_prev * f'(Z_prev) in place.
    cdef Py_ssize_t n = <Py_ssize_t>n_samples * n_in
    if not trans_d and not trans_w and ldd == n_out and ldw == n_out \
            and fp_small_layer(n_in, n_out):
        fp_small_delta(dtype_of(dZ), dZ, W, dZ_prev, n_samples, n_in, n_out)
    else:
        gemm(trans_d, not trans_w, n_samples, n_in, n_out, <floating>1, dZ, ldd, W, ldw,
             <floating>0, dZ_prev, n_in)
    if mask_prev != NULL:
        fp_mul(dtype_of(dZ_prev), dZ_prev, mask_prev, n)
    return fp_activation_backward(dtype_of(dZ_prev), dZ_prev, A_prev, Z_prev, n, activation_prev,
                                  param)


cdef void weight_gradient(const floating *A_prev, int lda, bint trans_a,
                          const floating *dZ, floating *dW, floating *db,
                          int n_samples, int n_in, int n_out,
                          floating alpha, floating beta, bint accumulate) noexcept nogil:
    # dW = alpha A_prev^T dZ + beta dW: the transpose is a BLAS flag, not a copy. A narrow
    # layer's product and bias sums are one pass of csrc/small.h.
    if not trans_a and lda == n_in and fp_small_layer(n_in, n_out):
        fp_small_weight_gradient(dtype_of(dZ), A_prev, dZ, dW, db, n_samples, n_in, n_out, alpha,
                                 beta, accumulate)
        return
    gemm(not trans_a, False, n_in, n_out, n_samples, alpha, A_prev, lda, dZ, n_out, beta, dW,
         n_out)
    fp_column_sum(dtype_of(dZ), dZ, n_samples, n_out, db, accumulate)


cdef fp_optimizer make_optimizer(dict hyper) except *:
    """The C description of an optimizer. Every field is read by name: a missing key raises."""
    cdef fp_optimizer opt
    opt.kind = hyper["kind"]
    opt.nesterov = hyper["nesterov"]
    opt.lr = hyper["lr"]
    opt.momentum = hyper["momentum"]
    opt.beta1 = hyper["beta1"]
    opt.beta2 = hyper["beta2"]
    opt.eps = hyper["eps"]
    opt.alpha = hyper["alpha"]
    opt.weight_decay = hyper["weight_decay"]
    opt.max_norm = hyper["max_norm"]
    opt.eps_outside = hyper["eps_outside"]
    opt.lr_in_velocity = hyper["lr_in_velocity"]
    return opt


# ---------------------------------------------------------------------------------------------
# def twins: arrays in (fastprop.kernels checks their values, layouts and overlaps first), GIL
# released around the kernel. Matrices that BLAS reads come C-contiguous with a flag saying
# whether the logical operand is their transpose. The memoryviews check dtype and contiguity;
# each twin checks every size it dereferences, so that no call from Python reads or writes out
# of bounds.

cdef int _need(bint ok, str what) except -1:
    if not ok:
        raise ValueError(what)
    return 0


cdef int _rows_cols(object view, Py_ssize_t rows, Py_ssize_t cols, str name) except -1:
    _need(view is not None and view.shape[0] == rows and view.shape[1] == cols and rows > 0
          and cols > 0, f"{name}: expected a non-empty ({rows}, {cols}) array")
    return 0

def _forward(const floating[:, ::1] X, bint trans_x, const floating[:, ::1] W, bint trans_w,
             const floating[::1] b, floating[:, ::1] Z, floating[:, ::1] A,
             int activation, double param):
    check_activation(activation)
    _need(0 < A.shape[0] <= INT_MAX and 0 < A.shape[1] <= INT_MAX,
          "out: expected a non-empty array within C int dimensions")
    cdef int n_samples = A.shape[0], n_out = A.shape[1]
    cdef int n_in = X.shape[0] if trans_x else X.shape[1]
    _rows_cols(X, n_in if trans_x else n_samples, n_samples if trans_x else n_in, "X")
    _rows_cols(W, n_out if trans_w else n_in, n_in if trans_w else n_out, "W")
    _need(b.shape[0] == n_out, f"b: expected ({n_out},)")
    if Z is not None:
        _rows_cols(Z, n_samples, n_out, "Z_out")
    cdef floating *z = &Z[0, 0] if Z is not None else NULL
    cdef int status
    with nogil:
        status = forward_layer(&X[0, 0], X.shape[1], trans_x, &W[0, 0], W.shape[1], trans_w,
                               &b[0], z, &A[0, 0], n_samples, n_in, n_out, activation, param)
    check_status(status, "activation", activation)


def _delta(const floating[:, ::1] dZ, bint trans_d, const floating[:, ::1] W, bint trans_w,
           const floating[:, ::1] A_prev, const floating[:, ::1] Z_prev,
           floating[:, ::1] dZ_prev, int activation_prev, double param):
    """Z_prev: the previous layer's pre-activation, or None for an activation whose derivative
    reads only A_prev."""
    cdef fp_activation_info info
    check_activation(activation_prev)
    fp_activation_describe(activation_prev, &info)
    _need(activation_prev != FP_SOFTMAX,
          "activation_prev: softmax's derivative is fused with its loss")
    _need(0 < dZ_prev.shape[0] <= INT_MAX and 0 < dZ_prev.shape[1] <= INT_MAX,
          "out: expected a non-empty array within C int dimensions")
    cdef int n_samples = dZ_prev.shape[0], n_in = dZ_prev.shape[1]
    cdef int n_out = W.shape[0] if trans_w else W.shape[1]
    _rows_cols(W, n_out if trans_w else n_in, n_in if trans_w else n_out, "W")
    _rows_cols(dZ, n_out if trans_d else n_samples, n_samples if trans_d else n_out, "dZ")
    _rows_cols(A_prev, n_samples, n_in, "A_prev")
    if Z_prev is not None:
        _rows_cols(Z_prev, n_samples, n_in, "Z_prev")
    _need(Z_prev is not None or not info.needs_z,
          f"Z_prev: activation code {activation_prev}'s derivative reads the pre-activation")
    cdef const floating *z = &Z_prev[0, 0] if Z_prev is not None else NULL
    cdef int status
    with nogil:
        status = delta_layer(&dZ[0, 0], dZ.shape[1], trans_d, &W[0, 0], W.shape[1], trans_w,
                             &A_prev[0, 0], z, NULL, &dZ_prev[0, 0], n_samples, n_in, n_out,
                             activation_prev, param)
    check_status(status, "activation_prev", activation_prev)


def _weight_gradient(const floating[:, ::1] A_prev, bint trans_a, const floating[:, ::1] dZ,
                     floating[:, ::1] dW, floating[::1] db, bint accumulate):
    _need(0 < dZ.shape[0] <= INT_MAX and 0 < dZ.shape[1] <= INT_MAX and
          0 < dW.shape[0] <= INT_MAX,
          "dZ, dW: expected non-empty arrays within C int dimensions")
    cdef int n_samples = dZ.shape[0], n_out = dZ.shape[1], n_in = dW.shape[0]
    _rows_cols(A_prev, n_in if trans_a else n_samples, n_samples if trans_a else n_in, "A_prev")
    _rows_cols(dW, n_in, n_out, "dW")
    _need(db.shape[0] == n_out, f"db: expected ({n_out},)")
    with nogil:
        weight_gradient(&A_prev[0, 0], A_prev.shape[1], trans_a, &dZ[0, 0], &dW[0, 0], &db[0],
                        n_samples, n_in, n_out, <floating>1, <floating>(1 if accumulate else 0),
                        accumulate)


def _loss_gradient(int loss, const floating[:, ::1] Z, const floating[:, ::1] A,
                   const floating[:, ::1] Y, const int64_t[::1] labels, floating[:, ::1] dZ,
                   int activation, double param):
    """Returns (mean loss, number of correct predictions)."""
    cdef Py_ssize_t i, n = Z.shape[0], k = Z.shape[1]
    check_loss(loss)
    check_activation(activation)
    _need(0 < n <= INT_MAX and 0 < k <= INT_MAX, "Z: expected a non-empty array")
    _rows_cols(A, n, k, "A")
    if labels is not None:
        _need(loss == FP_LOSS_SOFTMAX_XENT and labels.shape[0] == n,
              f"labels: expected {n} labels for softmax cross-entropy")
        for i in range(n):
            _need(0 <= labels[i] < k, f"labels: expected labels in [0, {k})")
    else:
        _rows_cols(Y, n, k, "Y")
    if dZ is not None:
        _rows_cols(dZ, n, k, "dZ")
    cdef const floating *y = &Y[0, 0] if Y is not None else NULL
    cdef const int64_t *lab = &labels[0] if labels is not None else NULL
    cdef floating *dz = &dZ[0, 0] if dZ is not None else NULL
    cdef int64_t n_correct = 0
    cdef double value
    cdef int status
    with nogil:
        status = fp_loss_gradient(dtype_of(&Z[0, 0]), loss, &Z[0, 0], &A[0, 0], y, lab, NULL, dz,
                                  Z.shape[0], Z.shape[1], activation, param, &value, &n_correct)
    check_status(status, "loss or activation", loss)
    return value, n_correct


def _sgd_update(floating[::1] params, const floating[::1] grads, double lr):
    _need(params.shape[0] == grads.shape[0] and params.shape[0] > 0,
          "grads: expected the length of params")
    with nogil:
        fp_sgd_update(dtype_of(&params[0]), &params[0], &grads[0], params.shape[0], lr)


cdef const void *_flat_floats(cnp.ndarray x, int *dtype) except? NULL:
    """The data of x, a C- or Fortran-contiguous float32 or float64 array, and its dtype code
    (no buffer acquired: a fit's checks call this on every X and y)."""
    if x.descr.type_num == cnp.NPY_FLOAT32:
        dtype[0] = FP_FLOAT32
    elif x.descr.type_num == cnp.NPY_FLOAT64:
        dtype[0] = FP_FLOAT64
    else:
        raise TypeError(f"x: expected a float32 or float64 array, got dtype '{x.dtype}'")
    if not (cnp.PyArray_IS_C_CONTIGUOUS(x) or cnp.PyArray_IS_F_CONTIGUOUS(x)):
        raise ValueError("x: expected a C- or Fortran-contiguous array")
    return cnp.PyArray_DATA(x)


def _all_finite(cnp.ndarray x not None):
    """True if every value of x (a C- or Fortran-contiguous float32 or float64 array) is
    finite: a vectorized sum, the values counted only when it is not (no floating-point
    warnings, no temporary array)."""
    cdef int finite = 1, dtype = 0
    cdef const void *data = _flat_floats(x, &dtype)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(x)
    if n == 0:
        return True
    with nogil:
        fp_all_finite(dtype, data, n, &finite)
    return bool(finite)


cdef void _range(const floating *x, Py_ssize_t n, double *lo, double *hi) noexcept nogil:
    """lo, hi: the least and the largest of x[0..n), n >= 1, both NaN when a value is NaN."""
    cdef floating a = x[0], b = x[0], v
    cdef Py_ssize_t i
    cdef bint nan = False
    for i in range(n):
        v = x[i]
        nan |= v != v
        a = v if v < a else a
        b = v if v > b else b
    lo[0] = a if not nan else NAN
    hi[0] = b if not nan else lo[0]


def _value_range(cnp.ndarray x not None):
    """(least, largest) of x (a non-empty C- or Fortran-contiguous float32 or float64 array),
    as floats, in one pass; (nan, nan) when x holds a NaN. A target check reads finiteness and
    its bounds from this."""
    cdef int dtype = 0
    cdef const void *data = _flat_floats(x, &dtype)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(x)
    cdef double lo, hi
    if n == 0:
        raise ValueError("x: expected at least one value")
    with nogil:
        if dtype == FP_FLOAT32:
            _range(<const float *>data, n, &lo, &hi)
        else:
            _range(<const double *>data, n, &lo, &hi)
    return lo, hi


def _dropout_key(unsigned long long seed, long long step, int layer):
    """The key of the dropout mask of `layer` at training step `step` for a model's seed."""
    return fp_dropout_key(seed, step, layer)


def _dropout_key_at(unsigned long long seed, long long step, int layer, long long first):
    """The key from which that mask is drawn from its element `first` on."""
    return fp_dropout_key_at(seed, step, layer, first)


def _dropout(const floating[:, ::1] A, floating[:, ::1] M, floating[:, ::1] D,
             unsigned long long key, double rate):
    """D = A * M with the inverted-dropout mask M of `key` (the engine's own generator)."""
    _need(A.shape[0] > 0 and A.shape[1] > 0, "A: expected a non-empty array")
    _rows_cols(M, A.shape[0], A.shape[1], "M")
    _rows_cols(D, A.shape[0], A.shape[1], "D")
    _need(0 <= rate < 1, f"rate: expected a dropout rate in [0, 1), got {rate}")
    with nogil:
        fp_dropout(dtype_of(&A[0, 0]), &A[0, 0], &M[0, 0], &D[0, 0], A.shape[0] * A.shape[1],
                   key, rate)


def _shuffle(int64_t[::1] order, unsigned long long seed, unsigned long long count):
    """Shuffles `order` in place as fit does for the epoch counted `count` of a shuffle `seed`."""
    if order.shape[0] > 1:
        with nogil:
            fp_shuffle(&order[0], order.shape[0], seed, count)


def _optimizer_n_state(int kind):
    """How many state buffers shaped like the parameters an optimizer of this kind reads."""
    cdef int n_state = 0
    check_optimizer(kind)
    check_status(fp_optimizer_n_state(kind, &n_state), "optimizer kind", kind)
    return n_state


def _activation_describe(int activation):
    """What the C table knows of an activation: {'needs_z': bool}."""
    cdef fp_activation_info info
    check_activation(activation)
    check_status(fp_activation_describe(activation, &info), "activation", activation)
    return {"needs_z": bool(info.needs_z)}


def _loss_describe(int loss):
    """What the C table knows of a loss: {'from_logits', 'classification', 'per_element':
    bool, 'output_activation': its required activation code or None}."""
    cdef fp_loss_info info
    check_loss(loss)
    check_status(fp_loss_describe(loss, &info), "loss", loss)
    return {"from_logits": bool(info.from_logits), "classification": bool(info.classification),
            "per_element": bool(info.per_element),
            "output_activation": None if info.output_activation < 0 else info.output_activation}


def _small_layer(Py_ssize_t n_in, Py_ssize_t n_out):
    """Whether the kernels above take csrc/small.h's products for a layer of this shape."""
    return bool(fp_small_layer(n_in, n_out))


cdef int _small_shape(Py_ssize_t n_in, Py_ssize_t n_out, str name) except -1:
    # what csrc/small.h can take (its scratch is on the stack), beyond what the engine gives it
    _need(0 < n_in <= FP_SMALL_MAX and 0 < n_out <= FP_SMALL_MAX_OUT
          and n_in * n_out <= FP_SMALL_MAX,
          f"{name}: expected at most {FP_SMALL_MAX} weights and {FP_SMALL_MAX_OUT} outputs, "
          f"got ({n_in}, {n_out})")
    return 0


def _small_product(const floating[:, ::1] A, const floating[:, ::1] W, floating[:, ::1] out,
                   bint transposed):
    """out = A W (the forward product) or, transposed, A W^T (the delta's) by csrc/small.h, for
    the tests and benchmarks against BLAS."""
    _small_shape(W.shape[0], W.shape[1], "W")
    cdef Py_ssize_t k = W.shape[1] if transposed else W.shape[0]
    _rows_cols(A, A.shape[0], k, "A")
    _rows_cols(out, A.shape[0], W.shape[0] if transposed else W.shape[1], "out")
    with nogil:
        if transposed:
            fp_small_delta(dtype_of(&A[0, 0]), &A[0, 0], &W[0, 0], &out[0, 0], A.shape[0],
                           W.shape[0], W.shape[1])
        else:
            fp_small_forward(dtype_of(&A[0, 0]), &A[0, 0], &W[0, 0], &out[0, 0], A.shape[0],
                             W.shape[0], W.shape[1])


def _small_weight_gradient(const floating[:, ::1] A, const floating[:, ::1] dZ,
                           floating[:, ::1] dW, floating[::1] db, double alpha, double beta,
                           bint accumulate):
    """dW = alpha A^T dZ + beta dW, db = column sums of dZ (+ db) by csrc/small.h."""
    _small_shape(dW.shape[0], dW.shape[1], "dW")
    _rows_cols(A, A.shape[0], dW.shape[0], "A")
    _rows_cols(dZ, A.shape[0], dW.shape[1], "dZ")
    _need(db.shape[0] == dW.shape[1], f"db: expected ({dW.shape[1]},)")
    with nogil:
        fp_small_weight_gradient(dtype_of(&A[0, 0]), &A[0, 0], &dZ[0, 0], &dW[0, 0], &db[0],
                                 A.shape[0], dW.shape[0], dW.shape[1], alpha, beta, accumulate)


def _bias_activation(floating[:, ::1] Z, floating[:, ::1] A, const floating[::1] b,
                     int activation, double param):
    """Z += b, A = f(Z) (Z may be A: in place), the element-wise pass alone (for benchmarks and
    the accuracy tests)."""
    check_activation(activation)
    _rows_cols(A, Z.shape[0], Z.shape[1], "A")
    _need(b.shape[0] == Z.shape[1], f"b: expected ({Z.shape[1]},)")
    cdef int status
    with nogil:
        status = fp_bias_activation(dtype_of(&Z[0, 0]), &Z[0, 0], &A[0, 0], &b[0], Z.shape[0],
                                    Z.shape[1], activation, param)
    check_status(status, "activation", activation)


def _activation_backward(floating[:, ::1] dA, const floating[:, ::1] A,
                         const floating[:, ::1] Z, int activation, double param):
    """dA *= f'(.) from A = f(Z) and Z (None for an activation whose derivative reads only A),
    the derivative pass alone (for benchmarks and the accuracy tests)."""
    check_activation(activation)
    _rows_cols(A, dA.shape[0], dA.shape[1], "A")
    if Z is not None:
        _rows_cols(Z, dA.shape[0], dA.shape[1], "Z")
    cdef const floating *z = &Z[0, 0] if Z is not None else NULL
    cdef int status
    with nogil:
        status = fp_activation_backward(dtype_of(&dA[0, 0]), &dA[0, 0], &A[0, 0], z,
                                        dA.shape[0] * dA.shape[1], activation, param)
    check_status(status, "activation", activation)


cdef class Copies:
    """Pairs (live, saved) of contiguous arrays of one size, checked once: take() copies every
    live array into its saved one, restore() back; compiled loops of memcpy, no allocation. A
    training epoch's snapshot (the parameters, optimizer state and counters it changes), taken
    before each epoch so that a diverged one can be replayed from its start."""

    def __cinit__(self, pairs):
        pairs = list(pairs)
        self.copies = <Copy *>calloc(max(len(pairs), 1), sizeof(Copy))
        if self.copies == NULL:
            raise MemoryError()
        self._arrays = []
        for k, pair in enumerate(pairs):
            live, saved = pair
            if not (isinstance(live, np.ndarray) and isinstance(saved, np.ndarray) and
                    live.nbytes == saved.nbytes and live.flags.c_contiguous and
                    saved.flags.c_contiguous and saved.flags.writeable and
                    live.flags.writeable and not live.dtype.hasobject and
                    not saved.dtype.hasobject and not np.may_share_memory(live, saved)):
                raise ValueError(f"pairs[{k}]: expected a (live, saved) pair of writable "
                                 f"contiguous numeric arrays of one size")
            self.copies[k].live = <void *>cnp.PyArray_DATA(live)
            self.copies[k].saved = <void *>cnp.PyArray_DATA(saved)
            self.copies[k].size = live.nbytes
            self._arrays += [live, saved]  # kept alive while the pointers are
        self.n = len(pairs)

    def __dealloc__(self):
        free(self.copies)

    def __reduce__(self):
        raise TypeError("Copies holds raw pointers: it is not pickled")

    def take(self):
        cdef int k
        for k in range(self.n):
            memcpy(self.copies[k].saved, self.copies[k].live, self.copies[k].size)

    def restore(self):
        cdef int k
        for k in range(self.n):
            memcpy(self.copies[k].live, self.copies[k].saved, self.copies[k].size)

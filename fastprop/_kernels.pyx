# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""fastprop's compiled kernels: BLAS for the matrix products, the C loops in csrc/ for the rest.

The cdef functions (declared in _kernels.pxd) run without the GIL and never allocate. Each has a
thin ``def`` twin with a leading underscore, which releases the GIL around it; those twins expect
arrays already checked by fastprop.kernels (C-contiguous, one dtype, matching shapes).
"""
from libc.stdint cimport int64_t, uint64_t
from scipy.linalg.cython_blas cimport sgemm, dgemm

cdef extern from "fastprop.h" nogil:
    void fp_bias_activation_f32(float *Z, float *A, const float *b, Py_ssize_t n_samples,
                                Py_ssize_t n_out, int activation, float negative_slope)
    void fp_bias_activation_f64(double *Z, double *A, const double *b, Py_ssize_t n_samples,
                                Py_ssize_t n_out, int activation, double negative_slope)
    void fp_activation_backward_f32(float *dA, const float *A, Py_ssize_t n, int activation,
                                    float negative_slope)
    void fp_activation_backward_f64(double *dA, const double *A, Py_ssize_t n, int activation,
                                    double negative_slope)
    void fp_column_sum_f32(const float *dZ, Py_ssize_t n_samples, Py_ssize_t n_out, float *db,
                           int accumulate)
    void fp_column_sum_f64(const double *dZ, Py_ssize_t n_samples, Py_ssize_t n_out, double *db,
                           int accumulate)
    double fp_squared_error_f32(const float *A, const float *Y, Py_ssize_t n, float *dA, float scale)
    double fp_squared_error_f64(const double *A, const double *Y, Py_ssize_t n, double *dA,
                                double scale)
    double fp_abs_error_f32(const float *A, const float *Y, Py_ssize_t n, float *dA, float scale)
    double fp_abs_error_f64(const double *A, const double *Y, Py_ssize_t n, double *dA,
                            double scale)
    double fp_huber_f32(const float *A, const float *Y, Py_ssize_t n, float *dA, float scale)
    double fp_huber_f64(const double *A, const double *Y, Py_ssize_t n, double *dA, double scale)
    double fp_bce_logits_f32(const float *Z, const float *Y, Py_ssize_t n, float *dZ, float scale,
                             int64_t *n_correct)
    double fp_bce_logits_f64(const double *Z, const double *Y, Py_ssize_t n, double *dZ,
                             double scale, int64_t *n_correct)
    double fp_softmax_xent_f32(const float *Z, const float *Y, Py_ssize_t n_samples,
                               Py_ssize_t n_classes, float *dZ, float scale, int64_t *n_correct)
    double fp_softmax_xent_f64(const double *Z, const double *Y, Py_ssize_t n_samples,
                               Py_ssize_t n_classes, double *dZ, double scale, int64_t *n_correct)
    double fp_softmax_xent_labels_f32(const float *Z, const int64_t *labels, Py_ssize_t n_samples,
                                      Py_ssize_t n_classes, float *dZ, float scale,
                                      int64_t *n_correct)
    double fp_softmax_xent_labels_f64(const double *Z, const int64_t *labels, Py_ssize_t n_samples,
                                      Py_ssize_t n_classes, double *dZ, double scale,
                                      int64_t *n_correct)
    void fp_optimizer_step_f32(const fp_optimizer *opt, float *params, float *grads, float *s1,
                               float *s2, Py_ssize_t n, int64_t t)
    void fp_optimizer_step_f64(const fp_optimizer *opt, double *params, double *grads,
                               double *s1, double *s2, Py_ssize_t n, int64_t t)
    void fp_dropout_f32(const float *A, float *M, float *D, Py_ssize_t n, uint64_t key, float rate)
    void fp_dropout_f64(const double *A, double *M, double *D, Py_ssize_t n, uint64_t key,
                        double rate)
    void fp_mul_f32(float *x, const float *m, Py_ssize_t n)
    void fp_mul_f64(double *x, const double *m, Py_ssize_t n)
    void fp_sgd_update_f32(float *params, const float *grads, Py_ssize_t n, float lr)
    void fp_sgd_update_f64(double *params, const double *grads, Py_ssize_t n, double lr)


# ---------------------------------------------------------------------------------------------
# The dtype is chosen here, at the boundary to BLAS and C, and nowhere else.

cdef void gemm(bint trans_a, bint trans_b, int m, int n, int k, floating alpha,
               const floating *A, int lda, const floating *B, int ldb,
               floating beta, floating *C, int ldc) noexcept nogil:
    # Column-major BLAS sees a row-major matrix as its transpose, so C^T = op(B)^T op(A)^T:
    # swap the operands and the dimensions, keep the transpose flags.
    cdef char ta = b'T' if trans_a else b'N'
    cdef char tb = b'T' if trans_b else b'N'
    if floating is float:
        sgemm(&tb, &ta, &n, &m, &k, &alpha, <float *>B, &ldb, <float *>A, &lda, &beta, C, &ldc)
    else:
        dgemm(&tb, &ta, &n, &m, &k, &alpha, <double *>B, &ldb, <double *>A, &lda, &beta, C, &ldc)


cdef inline void bias_activation(floating *Z, floating *A, const floating *b, Py_ssize_t n_samples,
                                 Py_ssize_t n_out, int activation,
                                 floating negative_slope) noexcept nogil:
    if floating is float:
        fp_bias_activation_f32(Z, A, b, n_samples, n_out, activation, negative_slope)
    else:
        fp_bias_activation_f64(Z, A, b, n_samples, n_out, activation, negative_slope)


cdef void dropout(const floating *A, floating *M, floating *D, Py_ssize_t n, uint64_t key,
                  floating rate) noexcept nogil:
    if floating is float:
        fp_dropout_f32(A, M, D, n, key, rate)
    else:
        fp_dropout_f64(A, M, D, n, key, rate)


cdef uint64_t dropout_key(uint64_t seed, int64_t step, int layer) noexcept nogil:
    return fp_dropout_key(seed, step, layer)


cdef void mul(floating *x, const floating *m, Py_ssize_t n) noexcept nogil:
    if floating is float:
        fp_mul_f32(x, m, n)
    else:
        fp_mul_f64(x, m, n)


cdef void activation_backward(floating *dA, const floating *A, Py_ssize_t n, int activation,
                              floating negative_slope) noexcept nogil:
    if floating is float:
        fp_activation_backward_f32(dA, A, n, activation, negative_slope)
    else:
        fp_activation_backward_f64(dA, A, n, activation, negative_slope)


cdef void column_sum(const floating *dZ, Py_ssize_t n_samples, Py_ssize_t n_out,
                     floating *db, bint accumulate) noexcept nogil:
    if floating is float:
        fp_column_sum_f32(dZ, n_samples, n_out, db, accumulate)
    else:
        fp_column_sum_f64(dZ, n_samples, n_out, db, accumulate)


cdef void sgd_update(floating *params, const floating *grads, Py_ssize_t n,
                     floating lr) noexcept nogil:
    if floating is float:
        fp_sgd_update_f32(params, grads, n, lr)
    else:
        fp_sgd_update_f64(params, grads, n, lr)


cdef void optimizer_step(const fp_optimizer *opt, floating *params, floating *grads,
                         floating *s1, floating *s2, Py_ssize_t n, int64_t t) noexcept nogil:
    if floating is float:
        fp_optimizer_step_f32(opt, params, grads, s1, s2, n, t)
    else:
        fp_optimizer_step_f64(opt, params, grads, s1, s2, n, t)


# ---------------------------------------------------------------------------------------------
# The three kernels of the chain rule, and the loss at the output.

cdef void forward_layer(const floating *X, int ldx, bint trans_x,
                        const floating *W, int ldw, bint trans_w,
                        const floating *b, floating *Z, floating *A,
                        int n_samples, int n_in, int n_out,
                        int activation, floating negative_slope) noexcept nogil:
    # Z = X W by BLAS, then one fused pass: Z += b, A = f(Z).
    cdef floating *out = Z if Z != NULL else A
    gemm(trans_x, trans_w, n_samples, n_out, n_in, <floating>1, X, ldx, W, ldw,
         <floating>0, out, n_out)
    bias_activation(out, A, b, n_samples, n_out, activation, negative_slope)


cdef void delta_layer(const floating *dZ, int ldd, bint trans_d,
                      const floating *W, int ldw, bint trans_w,
                      const floating *A_prev, floating *dZ_prev,
                      int n_samples, int n_in, int n_out,
                      int activation_prev, floating negative_slope) noexcept nogil:
    # dA_prev = dZ W^T by BLAS, then dZ_prev = dA_prev * f'(Z_prev) in place.
    gemm(trans_d, not trans_w, n_samples, n_in, n_out, <floating>1, dZ, ldd, W, ldw,
         <floating>0, dZ_prev, n_in)
    activation_backward(dZ_prev, A_prev, <Py_ssize_t>n_samples * n_in, activation_prev,
                        negative_slope)


cdef void weight_gradient(const floating *A_prev, int lda, bint trans_a,
                          const floating *dZ, floating *dW, floating *db,
                          int n_samples, int n_in, int n_out,
                          bint accumulate) noexcept nogil:
    # dW = A_prev^T dZ: the transpose is a BLAS flag, not a copy.
    gemm(not trans_a, False, n_in, n_out, n_samples, <floating>1, A_prev, lda, dZ, n_out,
         <floating>(1 if accumulate else 0), dW, n_out)
    column_sum(dZ, n_samples, n_out, db, accumulate)


cdef double loss_gradient(int loss, const floating *Z, const floating *A,
                          const floating *Y, const int64_t *labels, floating *dZ,
                          int n_samples, int n_out, int activation, floating negative_slope,
                          int64_t *n_correct) noexcept nogil:
    cdef Py_ssize_t n = <Py_ssize_t>n_samples * n_out
    cdef Py_ssize_t norm
    cdef double total
    if loss == FP_LOSS_MSE or loss == FP_LOSS_HALF_SE:
        # dL/dA, then through f'(.) of the output layer like any other layer.
        scale = <floating>(2.0 / n) if loss == FP_LOSS_MSE else <floating>(1.0 / n_samples)
        if floating is float:
            total = fp_squared_error_f32(A, Y, n, dZ, scale)
        else:
            total = fp_squared_error_f64(A, Y, n, dZ, scale)
        if dZ != NULL:
            activation_backward(dZ, A, n, activation, negative_slope)
        return total / n if loss == FP_LOSS_MSE else total / (2.0 * n_samples)
    if loss == FP_LOSS_MAE or loss == FP_LOSS_HUBER:
        if loss == FP_LOSS_MAE:
            if floating is float:
                total = fp_abs_error_f32(A, Y, n, dZ, <float>(1.0 / n))
            else:
                total = fp_abs_error_f64(A, Y, n, dZ, 1.0 / n)
        else:
            if floating is float:
                total = fp_huber_f32(A, Y, n, dZ, <float>(1.0 / n))
            else:
                total = fp_huber_f64(A, Y, n, dZ, 1.0 / n)
        if dZ != NULL:
            activation_backward(dZ, A, n, activation, negative_slope)
        return total / n
    if loss == FP_LOSS_BCE or loss == FP_LOSS_MULTILABEL_BCE:
        # Sigmoid fused with the loss: dL/dZ = (sigmoid(Z) - Y) / (n, or n_samples for the
        # multi-label loss, which sums over labels).
        norm = n if loss == FP_LOSS_BCE else n_samples
        if floating is float:
            total = fp_bce_logits_f32(Z, Y, n, dZ, <float>(1.0 / norm), n_correct)
        else:
            total = fp_bce_logits_f64(Z, Y, n, dZ, 1.0 / norm, n_correct)
        return total / norm
    # Softmax fused with the loss: dL/dZ = (softmax(Z) - Y) / n_samples.
    if labels != NULL:
        if floating is float:
            total = fp_softmax_xent_labels_f32(Z, labels, n_samples, n_out, dZ,
                                               <float>(1.0 / n_samples), n_correct)
        else:
            total = fp_softmax_xent_labels_f64(Z, labels, n_samples, n_out, dZ,
                                               1.0 / n_samples, n_correct)
    else:
        if floating is float:
            total = fp_softmax_xent_f32(Z, Y, n_samples, n_out, dZ, <float>(1.0 / n_samples),
                                        n_correct)
        else:
            total = fp_softmax_xent_f64(Z, Y, n_samples, n_out, dZ, 1.0 / n_samples, n_correct)
    return total / n_samples


# ---------------------------------------------------------------------------------------------
# def twins: checked arrays in, GIL released around the kernel. Matrices that BLAS reads come
# C-contiguous with a flag saying whether the logical operand is their transpose.

def _forward(const floating[:, ::1] X, bint trans_x, const floating[:, ::1] W, bint trans_w,
             const floating[::1] b, floating[:, ::1] Z, floating[:, ::1] A,
             int activation, double negative_slope):
    cdef int n_samples = A.shape[0], n_out = A.shape[1]
    cdef int n_in = X.shape[0] if trans_x else X.shape[1]
    cdef floating *z = &Z[0, 0] if Z is not None else NULL
    with nogil:
        forward_layer(&X[0, 0], X.shape[1], trans_x, &W[0, 0], W.shape[1], trans_w, &b[0],
                      z, &A[0, 0], n_samples, n_in, n_out, activation,
                      <floating>negative_slope)


def _delta(const floating[:, ::1] dZ, bint trans_d, const floating[:, ::1] W, bint trans_w,
           const floating[:, ::1] A_prev, floating[:, ::1] dZ_prev, int activation_prev,
           double negative_slope):
    cdef int n_samples = dZ_prev.shape[0], n_in = dZ_prev.shape[1]
    cdef int n_out = W.shape[0] if trans_w else W.shape[1]
    with nogil:
        delta_layer(&dZ[0, 0], dZ.shape[1], trans_d, &W[0, 0], W.shape[1], trans_w,
                    &A_prev[0, 0], &dZ_prev[0, 0], n_samples, n_in, n_out, activation_prev,
                    <floating>negative_slope)


def _weight_gradient(const floating[:, ::1] A_prev, bint trans_a, const floating[:, ::1] dZ,
                     floating[:, ::1] dW, floating[::1] db, bint accumulate):
    cdef int n_samples = dZ.shape[0], n_out = dZ.shape[1], n_in = dW.shape[0]
    with nogil:
        weight_gradient(&A_prev[0, 0], A_prev.shape[1], trans_a, &dZ[0, 0], &dW[0, 0], &db[0],
                        n_samples, n_in, n_out, accumulate)


def _loss_gradient(int loss, const floating[:, ::1] Z, const floating[:, ::1] A,
                   const floating[:, ::1] Y, const int64_t[::1] labels, floating[:, ::1] dZ,
                   int activation, double negative_slope):
    """Returns (mean loss, number of correct predictions)."""
    cdef int n_samples = Z.shape[0], n_out = Z.shape[1]
    cdef const floating *y = &Y[0, 0] if Y is not None else NULL
    cdef const int64_t *lab = &labels[0] if labels is not None else NULL
    cdef floating *dz = &dZ[0, 0] if dZ is not None else NULL
    cdef int64_t n_correct = 0
    cdef double value
    with nogil:
        value = loss_gradient(loss, &Z[0, 0], &A[0, 0], y, lab, dz, n_samples, n_out,
                              activation, <floating>negative_slope, &n_correct)
    return value, n_correct


def _sgd_update(floating[::1] params, const floating[::1] grads, double lr):
    with nogil:
        sgd_update(&params[0], &grads[0], params.shape[0], <floating>lr)


def _activation_derivative(const floating[:, ::1] A, floating[:, ::1] out, int activation,
                           double negative_slope):
    """out = f'(.) written through A = f(Z), by the same C loop the delta kernel uses."""
    cdef Py_ssize_t n = A.shape[0] * A.shape[1]
    with nogil:
        for i in range(A.shape[0]):
            for j in range(A.shape[1]):
                out[i, j] = 1
        activation_backward(&out[0, 0], &A[0, 0], n, activation, <floating>negative_slope)


def _gemm(bint trans_a, bint trans_b, double alpha, const floating[:, ::1] A,
          const floating[:, ::1] B, double beta, floating[:, ::1] C):
    """C = alpha op(A) op(B) + beta C through the same BLAS entry point as the kernels (for the
    benchmarks' GEMM floor and the tests)."""
    cdef int m = C.shape[0], n = C.shape[1]
    cdef int k = A.shape[0] if trans_a else A.shape[1]
    with nogil:
        gemm(trans_a, trans_b, m, n, k, <floating>alpha, &A[0, 0], A.shape[1], &B[0, 0],
             B.shape[1], <floating>beta, &C[0, 0], n)


cdef fp_optimizer make_optimizer(dict hyper):
    """The C description of an optimizer from fastprop.optimizers' hyperparameters."""
    cdef fp_optimizer opt
    opt.kind = hyper["kind"]
    opt.nesterov = hyper.get("nesterov", False)
    opt.lr = hyper["lr"]
    opt.momentum = hyper.get("momentum", 0.0)
    opt.beta1 = hyper.get("beta1", 0.0)
    opt.beta2 = hyper.get("beta2", 0.0)
    opt.eps = hyper.get("eps", 0.0)
    opt.alpha = hyper.get("alpha", 0.0)
    opt.weight_decay = hyper.get("weight_decay", 0.0)
    opt.max_norm = hyper.get("max_norm", 0.0)
    return opt


def _optimizer_step(dict hyper, floating[::1] params, floating[::1] grads, floating[::1] s1,
                    floating[::1] s2, long long t):
    """One optimizer step over checked flat buffers (s1, s2 of the same size, or None)."""
    cdef fp_optimizer opt = make_optimizer(hyper)
    cdef floating *a = &s1[0] if s1 is not None else NULL
    cdef floating *b = &s2[0] if s2 is not None else NULL
    with nogil:
        optimizer_step(&opt, &params[0], &grads[0], a, b, params.shape[0], t)


def _dropout_key(unsigned long long seed, long long step, int layer):
    return dropout_key(seed, step, layer)


def _dropout(const floating[:, ::1] A, floating[:, ::1] M, floating[:, ::1] D,
             unsigned long long key, double rate):
    """D = A * M with a fresh inverted-dropout mask M (the compiled step's own generator)."""
    with nogil:
        dropout(&A[0, 0], &M[0, 0], &D[0, 0], A.shape[0] * A.shape[1], key, <floating>rate)


def _mul(floating[:, ::1] x, const floating[:, ::1] m):
    with nogil:
        mul(&x[0, 0], &m[0, 0], x.shape[0] * x.shape[1])


def _activation_backward(floating[:, ::1] dA, const floating[:, ::1] A, int activation,
                         double negative_slope):
    """dA *= f'(.) in place, f' written through A = f(Z)."""
    with nogil:
        activation_backward(&dA[0, 0], &A[0, 0], dA.shape[0] * dA.shape[1], activation,
                            <floating>negative_slope)

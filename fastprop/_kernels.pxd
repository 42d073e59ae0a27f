# The C API for Cython, declared once: csrc/fastprop.h's constants and prototypes, and the kernels
# of _kernels.pyx (BLAS products and the chain rule's three kernels). Python reads the constants
# from the module (fastprop._kernels.fp_activation.FP_SIGMOID, ..., built from the C tables' own
# names; N_CODES, the count of each kind of code; C_INT_MAX, the largest dimension BLAS takes):
# they are written nowhere else.
# One kernel body serves float32 and float64 through the `floating` fused type. Matrices are
# row-major; a matrix that BLAS reads is given as (pointer, leading dimension, transposed?), so
# Fortran-ordered or transposed inputs need no copy.
from libc.limits cimport INT_MAX
from libc.stdint cimport int32_t, int64_t, uint64_t

ctypedef fused floating:
    float
    double

cdef extern from "fastprop.h" nogil:
    cpdef enum fp_status:
        FP_OK
        FP_ERR_CODE
        FP_ERR_NULL
    cpdef enum fp_dtype:
        FP_FLOAT32
        FP_FLOAT64
        FP_N_DTYPES
    # Activations and losses: only the codes Cython names, and the counts. Python finds every
    # code by its C name (fp_activation_describe, fp_loss_describe): adding one declares nothing
    # here.
    enum:
        FP_IDENTITY
        FP_SOFTMAX
        FP_N_ACTIVATIONS
        FP_LOSS_SOFTMAX_XENT
        FP_N_LOSSES
    cpdef enum fp_optimizer_kind:
        FP_OPT_SGD
        FP_OPT_MOMENTUM
        FP_OPT_ADAM
        FP_OPT_ADAMW
        FP_OPT_RMSPROP
        FP_N_OPTIMIZERS

    ctypedef struct fp_optimizer:
        int kind
        int nesterov
        double lr, momentum, beta1, beta2, eps, alpha, weight_decay, max_norm
        int eps_outside
        int lr_in_velocity
    ctypedef struct fp_activation_info:
        const char *name
        int needs_z
    ctypedef struct fp_loss_info:
        const char *name
        int from_logits, classification, per_element, output_activation

    int fp_activation_describe(int activation, fp_activation_info *info)
    int fp_loss_describe(int loss, fp_loss_info *info)
    int fp_optimizer_n_state(int kind, int *n_state)
    int fp_bias_activation(int dtype, void *Z, void *A, const void *b, Py_ssize_t n_samples,
                           Py_ssize_t n_out, int activation, double param)
    int fp_activation_backward(int dtype, void *dA, const void *A, const void *Z, Py_ssize_t n,
                               int activation, double param)
    int fp_column_sum(int dtype, const void *dZ, Py_ssize_t n_samples, Py_ssize_t n_out,
                      void *db, int accumulate)
    int fp_loss_gradient(int dtype, int loss, const void *Z, const void *A, const void *Y,
                         const int64_t *labels, const void *sample_weight, void *dZ,
                         Py_ssize_t n_samples, Py_ssize_t n_out, int activation, double param,
                         double *value, int64_t *n_correct)
    int fp_optimizer_step(int dtype, const fp_optimizer *opt, void *params, void *grads,
                          void *state0, void *state1, Py_ssize_t n, int64_t t)
    int fp_sgd_update(int dtype, void *params, const void *grads, Py_ssize_t n, double lr)
    int fp_all_finite(int dtype, const void *x, Py_ssize_t n, int *finite)
    int fp_sum_of_squares(int dtype, const void *x, Py_ssize_t n, double *total)
    int fp_scale(int dtype, void *y, const void *x, double a, Py_ssize_t n, double *squares)
    int fp_dropout(int dtype, const void *A, void *M, void *D, Py_ssize_t n, uint64_t key,
                   double rate)
    int fp_mul(int dtype, void *x, const void *m, Py_ssize_t n)
    int fp_csr_product(int dtype, const void *values, const int32_t *indices,
                       const int64_t *indptr, const int64_t *ids, Py_ssize_t first, Py_ssize_t n,
                       const void *W, Py_ssize_t n_out, void *Z)
    int fp_csr_scatter(int dtype, const void *values, const int32_t *indices,
                       const int64_t *indptr, const int64_t *ids, Py_ssize_t first, Py_ssize_t n,
                       const void *dZ, Py_ssize_t n_out, void *G, double alpha)
    uint64_t fp_dropout_key(uint64_t seed, int64_t step, int layer)
    uint64_t fp_dropout_key_at(uint64_t seed, int64_t step, int layer, int64_t first)
    void fp_pass_begin()
    void fp_pass_end()
    int fp_fork_pending()
    void fp_park()
    void fp_fork_prepare()
    void fp_fork_done(int child)
    void fp_shuffle(int64_t *order, Py_ssize_t n, uint64_t seed, uint64_t count)
    enum: FP_SMALL_MAX
    enum: FP_SMALL_MAX_OUT
    int fp_small_layer(Py_ssize_t n_in, Py_ssize_t n_out)
    int fp_small_forward(int dtype, const void *A, const void *W, void *Z, Py_ssize_t n_samples,
                         Py_ssize_t n_in, Py_ssize_t n_out)
    int fp_small_delta(int dtype, const void *dZ, const void *W, void *dA,
                       Py_ssize_t n_samples, Py_ssize_t n_in, Py_ssize_t n_out)
    int fp_small_weight_gradient(int dtype, const void *A, const void *dZ, void *dW, void *db,
                                 Py_ssize_t n_samples, Py_ssize_t n_in, Py_ssize_t n_out,
                                 double alpha, double beta, int accumulate)


# The one check of each kind of code, against its count: a ValueError naming the code.
cdef int check_activation(int code) except -1
cdef int check_loss(int code) except -1
cdef int check_optimizer(int kind) except -1
# A C status turned into a ValueError (FP_ERR_CODE: naming `what` and its code).
cdef int check_status(int status, str what, int code) except -1


cdef inline int dtype_of(const floating *p) noexcept nogil:
    """The fastprop.h dtype code of a fused-type pointer (resolved at compile time)."""
    return FP_FLOAT32 if floating is float else FP_FLOAT64


# Row-major C (m, n) = alpha op(A) op(B) + beta C, op(A) (m, k), op(B) (k, n).
cdef void gemm(bint trans_a, bint trans_b, int m, int n, int k, floating alpha,
               const floating *A, int lda, const floating *B, int ldb,
               floating beta, floating *C, int ldc) noexcept nogil

# Forward: Z = X W + b, A = f(Z). Z may be NULL (then Z is written into A and replaced by f(Z)).
# Returns fp_bias_activation's status.
cdef int forward_layer(const floating *X, int ldx, bint trans_x,    # IN  (n_samples, n_in)
                        const floating *W, int ldw, bint trans_w,    # IN  (n_in, n_out)
                        const floating *b,                           # IN  (n_out,)
                        floating *Z,                                 # OUT (n_samples, n_out) or NULL
                        floating *A,                                 # OUT (n_samples, n_out)
                        int n_samples, int n_in, int n_out,
                        int activation, double param) noexcept nogil

# Delta: dA_prev = dZ W^T, [* mask_prev,] dZ_prev = dA_prev * f'(Z_prev) (f' read from
# A_prev = f(Z_prev) and, for an activation that needs it, Z_prev; else Z_prev may be NULL).
# mask_prev: the inverted-dropout mask applied to A_prev in the forward pass, or NULL. Returns
# fp_activation_backward's status.
cdef int delta_layer(const floating *dZ, int ldd, bint trans_d,       # IN  (n_samples, n_out)
                     const floating *W, int ldw, bint trans_w,        # IN  (n_in, n_out)
                     const floating *A_prev,                          # IN  (n_samples, n_in), dense
                     const floating *Z_prev,                          # IN  (n_samples, n_in) or NULL
                     const floating *mask_prev,                       # IN  (n_samples, n_in) or NULL
                     floating *dZ_prev,                               # OUT (n_samples, n_in), dense
                     int n_samples, int n_in, int n_out,
                     int activation_prev, double param) noexcept nogil

# Weight gradient: dW = alpha A_prev^T dZ (+ beta dW), db = sum over samples of dZ (+= if
# accumulate). With alpha = -lr and beta = 1 it is plain SGD's update of W itself.
cdef void weight_gradient(const floating *A_prev, int lda, bint trans_a,  # IN  (n_samples, n_in)
                          const floating *dZ,                             # IN  (n_samples, n_out), dense
                          floating *dW,                                   # OUT (n_in, n_out), dense
                          floating *db,                                   # OUT (n_out,)
                          int n_samples, int n_in, int n_out,
                          floating alpha, floating beta, bint accumulate) noexcept nogil

# y += alpha x over n values; and the sum of x_i^2 (both BLAS).
cdef void axpy(Py_ssize_t n, floating alpha, const floating *x, floating *y) noexcept nogil
cdef double sum_of_squares(Py_ssize_t n, const floating *x) noexcept nogil

# The C description of an optimizer from fastprop.optimizers' hyperparameters (every key named).
cdef fp_optimizer make_optimizer(dict hyper) except *


# Pairs (live, saved) of arrays copied one way or the other by memcpy loops: a training epoch's
# snapshot (fastprop/loop.py), which the engine also takes between the epochs of one call.
cdef struct Copy:
    void *live
    void *saved
    size_t size


cdef class Copies:
    cdef Copy *copies
    cdef int n
    cdef list _arrays

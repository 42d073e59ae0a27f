# Declarations of fastprop's compiled kernels, for cimport by other Cython modules.
# One body serves float32 and float64 through the `floating` fused type. Matrices are row-major;
# a matrix that BLAS reads is given as (pointer, leading dimension, transposed?), so Fortran-ordered
# or transposed inputs need no copy.
from libc.stdint cimport int64_t, uint64_t

ctypedef fused floating:
    float
    double

cdef extern from "fastprop.h" nogil:
    enum:
        FP_IDENTITY
        FP_SIGMOID
        FP_TANH
        FP_RELU
        FP_LEAKY_RELU
        FP_SOFTMAX
    enum:
        FP_LOSS_MSE
        FP_LOSS_HALF_SE
        FP_LOSS_BCE
        FP_LOSS_SOFTMAX_XENT
        FP_LOSS_MAE
        FP_LOSS_HUBER
        FP_LOSS_MULTILABEL_BCE

    uint64_t fp_dropout_key(uint64_t seed, int64_t step, int layer)
    ctypedef struct fp_optimizer:
        int kind
        int nesterov
        double lr, momentum, beta1, beta2, eps, alpha, weight_decay, max_norm

# Row-major C (m, n) = alpha op(A) op(B) + beta C, op(A) (m, k), op(B) (k, n).
cdef void gemm(bint trans_a, bint trans_b, int m, int n, int k, floating alpha,
               const floating *A, int lda, const floating *B, int ldb,
               floating beta, floating *C, int ldc) noexcept nogil

# Forward: Z = X W + b, A = f(Z). Z may be NULL (then Z is written into A and replaced by f(Z)).
cdef void forward_layer(const floating *X, int ldx, bint trans_x,    # IN  (n_samples, n_in)
                        const floating *W, int ldw, bint trans_w,    # IN  (n_in, n_out)
                        const floating *b,                           # IN  (n_out,)
                        floating *Z,                                 # OUT (n_samples, n_out) or NULL
                        floating *A,                                 # OUT (n_samples, n_out)
                        int n_samples, int n_in, int n_out,
                        int activation, floating negative_slope) noexcept nogil

# Delta: dA_prev = dZ W^T, dZ_prev = dA_prev * f'(.) (f' written through A_prev = f(Z_prev)).
cdef void delta_layer(const floating *dZ, int ldd, bint trans_d,      # IN  (n_samples, n_out)
                      const floating *W, int ldw, bint trans_w,       # IN  (n_in, n_out)
                      const floating *A_prev,                         # IN  (n_samples, n_in), dense
                      floating *dZ_prev,                              # OUT (n_samples, n_in), dense
                      int n_samples, int n_in, int n_out,
                      int activation_prev, floating negative_slope) noexcept nogil

# Weight gradient: dW = A_prev^T dZ, db = sum over samples of dZ (each += if accumulate).
cdef void weight_gradient(const floating *A_prev, int lda, bint trans_a,  # IN  (n_samples, n_in)
                          const floating *dZ,                             # IN  (n_samples, n_out), dense
                          floating *dW,                                   # OUT (n_in, n_out), dense
                          floating *db,                                   # OUT (n_out,)
                          int n_samples, int n_in, int n_out,
                          bint accumulate) noexcept nogil

# Loss of the output layer and its gradient with respect to the pre-activation Z: returns the
# mean loss; writes dZ unless it is NULL; adds the number of correct predictions to n_correct
# (classification losses; not NULL). Y (targets) or labels (softmax cross-entropy only) is NULL.
cdef double loss_gradient(int loss,
                          const floating *Z, const floating *A,    # IN  (n_samples, n_out)
                          const floating *Y,                       # IN  (n_samples, n_out) or NULL
                          const int64_t *labels,                   # IN  (n_samples,) or NULL
                          floating *dZ,                            # OUT (n_samples, n_out) or NULL
                          int n_samples, int n_out,
                          int activation, floating negative_slope,
                          int64_t *n_correct) noexcept nogil

# db = sum over rows of dZ (+ db if accumulate).
cdef void column_sum(const floating *dZ, Py_ssize_t n_samples, Py_ssize_t n_out,  # IN
                     floating *db,                                                # OUT (n_out,)
                     bint accumulate) noexcept nogil

# SGD: params -= lr * grads over one flat buffer.
cdef void sgd_update(floating *params, const floating *grads, Py_ssize_t n,
                     floating lr) noexcept nogil

# One optimizer step over the flat buffers (clipping scales grads in place); t counts the steps.
cdef void optimizer_step(const fp_optimizer *opt, floating *params,   # IN/OUT (n,)
                         floating *grads,                             # IN (n,), clipped in place
                         floating *s1, floating *s2,                  # IN/OUT state (n,) or NULL
                         Py_ssize_t n, int64_t t) noexcept nogil

# The C description of an optimizer from a dict of hyperparameters (fastprop/optimizers.py).
cdef fp_optimizer make_optimizer(dict hyper)

# Inverted dropout of A into D with the mask M (IN A; OUT M, D), and x *= m.
cdef void dropout(const floating *A, floating *M, floating *D, Py_ssize_t n, uint64_t key,
                  floating rate) noexcept nogil
cdef void mul(floating *x, const floating *m, Py_ssize_t n) noexcept nogil
cdef void activation_backward(floating *dA, const floating *A, Py_ssize_t n, int activation,
                              floating negative_slope) noexcept nogil

# The key of one dropout mask, from the model's seed, the step count and the layer index.
cdef uint64_t dropout_key(uint64_t seed, int64_t step, int layer) noexcept nogil

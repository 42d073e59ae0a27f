/* fastprop's plain-C kernels: the element-wise work that BLAS cannot do.
 *
 * Every function exists twice, with the suffix _f32 (float) and _f64 (double), generated from one
 * body in elementwise_impl.h. Matrices are row-major and dense: element (i, j) of an (n, m) matrix
 * is at p[i * m + j]. The callers (fastprop/_kernels.pyx) validate everything; these trust it.
 */
#ifndef FASTPROP_H
#define FASTPROP_H

#include <stddef.h>
#include <stdint.h>

/* Activation codes, shared with fastprop/activations.py. */
enum {
    FP_IDENTITY = 0,
    FP_SIGMOID = 1,
    FP_TANH = 2,
    FP_RELU = 3,
    FP_LEAKY_RELU = 4,
    FP_SOFTMAX = 5   /* row-wise; only as the output of a softmax cross-entropy loss */
};

/* Loss codes, shared with fastprop/losses.py. */
enum {
    FP_LOSS_MSE = 0,           /* mean over all elements of (a - y)^2 */
    FP_LOSS_HALF_SE = 1,       /* mean over samples of 1/2 sum_j (a_j - y_j)^2 */
    FP_LOSS_BCE = 2,           /* binary cross-entropy on a sigmoid output, mean over elements */
    FP_LOSS_SOFTMAX_XENT = 3,  /* softmax cross-entropy, mean over samples */
    FP_LOSS_MAE = 4,           /* mean over all elements of |a - y| */
    FP_LOSS_HUBER = 5,         /* mean over all elements of Huber(a - y), delta 1 */
    FP_LOSS_MULTILABEL_BCE = 6 /* binary cross-entropy summed over labels, mean over samples */
};

/* Optimizer kinds and hyperparameters, shared with fastprop/optimizers.py. */
enum { FP_OPT_SGD = 0, FP_OPT_MOMENTUM = 1, FP_OPT_ADAM = 2, FP_OPT_ADAMW = 3, FP_OPT_RMSPROP = 4 };

typedef struct {
    int kind;
    int nesterov;
    double lr, momentum, beta1, beta2, eps, alpha, weight_decay;
    double max_norm; /* clip the gradients to this global L2 norm first; 0: no clipping */
} fp_optimizer;

/* The element-wise kernels are compiled for AVX-512, AVX2 and the baseline ISA, the best chosen
 * when the library loads (GCC's function multiversioning, on x86-64 Linux). FMA contraction
 * stays off (-std=c11), so every version gives the same bits. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && \
    !defined(FP_NO_MULTIVERSION)
#define FP_MULTIVERSION __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define FP_MULTIVERSION
#endif

/* Runs STATEMENT (a loop over N elements) on OpenMP threads only when N is large. The
 * element-wise loops are memory-bound and a few percent of a step, while OpenMP's idle threads
 * spin after each parallel region and take the cores from OpenBLAS's threads (measured: a third
 * of the wide benchmark's speed at 2^18 elements); so only loops of 4M elements and more, whose
 * own cost dwarfs that, are shared out. Even an inactive parallel region calls the runtime, hence
 * the plain loop below the threshold. */
#ifndef FP_OMP_MIN_ELEMENTS
#define FP_OMP_MIN_ELEMENTS 4194304
#endif
#define FP_MAYBE_PARALLEL(N, ...)                                                                  \
    if ((N) >= FP_OMP_MIN_ELEMENTS) {                                                               \
        _Pragma("omp parallel for schedule(static)") __VA_ARGS__                                   \
    } else {                                                                                        \
        __VA_ARGS__                                                                                 \
    }

#define FP_DECLARE(REAL, SFX)                                                                      \
    /* Z += b (per column), then A = f(Z); Z may equal A (in place). */                           \
    void fp_bias_activation_##SFX(REAL *Z, REAL *A, const REAL *b, ptrdiff_t n_samples,            \
                                  ptrdiff_t n_out, int activation, REAL negative_slope);           \
    /* dA *= f'(.), the derivative written through the activation's output A. */                   \
    void fp_activation_backward_##SFX(REAL *dA, const REAL *A, ptrdiff_t n, int activation,         \
                                      REAL negative_slope);                                        \
    /* db = sum over rows of dZ (+ db if accumulate). */                                           \
    void fp_column_sum_##SFX(const REAL *dZ, ptrdiff_t n_samples, ptrdiff_t n_out, REAL *db,        \
                             int accumulate);                                                      \
    /* Squared error: returns sum (A - Y)^2; dA = scale * (A - Y). */                              \
    double fp_squared_error_##SFX(const REAL *A, const REAL *Y, ptrdiff_t n, REAL *dA, REAL scale); \
    /* Absolute error: returns sum |A - Y|; dA = scale * sign(A - Y). */                            \
    double fp_abs_error_##SFX(const REAL *A, const REAL *Y, ptrdiff_t n, REAL *dA, REAL scale);    \
    /* Huber with delta 1: returns the sum of 1/2 r^2 (|r| <= 1) or |r| - 1/2; dA = scale * clip(r). */\
    double fp_huber_##SFX(const REAL *A, const REAL *Y, ptrdiff_t n, REAL *dA, REAL scale);        \
    /* Binary cross-entropy from logits Z: returns the sum over elements; dZ = scale*(sigmoid(Z)-Y);\
       *n_correct (if not NULL) counts elements with (Z > 0) == (Y > 0.5). */                      \
    double fp_bce_logits_##SFX(const REAL *Z, const REAL *Y, ptrdiff_t n, REAL *dZ, REAL scale,     \
                               int64_t *n_correct);                                                \
    /* Softmax cross-entropy from logits Z (n_samples, n_classes) against target rows Y: returns   \
       the sum over rows of -sum_k Y_k log softmax(Z)_k; dZ = scale * (softmax(Z) * sum(Y) - Y). */ \
    double fp_softmax_xent_##SFX(const REAL *Z, const REAL *Y, ptrdiff_t n_samples,                 \
                                 ptrdiff_t n_classes, REAL *dZ, REAL scale, int64_t *n_correct);   \
    /* The same against integer labels (0 <= label < n_classes). */                                \
    double fp_softmax_xent_labels_##SFX(const REAL *Z, const int64_t *labels, ptrdiff_t n_samples,  \
                                        ptrdiff_t n_classes, REAL *dZ, REAL scale,                 \
                                        int64_t *n_correct);                                       \
    /* Inverted dropout: M = 1/(1 - rate) where a hash of (key, i) is >= rate, else 0; D = A * M. */\
    void fp_dropout_##SFX(const REAL *A, REAL *M, REAL *D, ptrdiff_t n, uint64_t key, REAL rate); \
    /* x *= m, element-wise. */                                                                    \
    void fp_mul_##SFX(REAL *x, const REAL *m, ptrdiff_t n);                                       \
    /* params -= lr * grads, over the flat buffers. */                                             \
    void fp_sgd_update_##SFX(REAL *params, const REAL *grads, ptrdiff_t n, REAL lr);              \
    /* One optimizer step over the flat buffers: clipping (scales grads), weight decay, the update;\
       s1, s2 are its state (momentum, or the Adam moments, or RMSprop's average); t >= 1 counts    \
       the steps, this one included. */                                                           \
    void fp_optimizer_step_##SFX(const fp_optimizer *opt, REAL *params, REAL *grads, REAL *s1,    \
                                 REAL *s2, ptrdiff_t n, int64_t t);

/* The key of one dropout mask, from the model's seed, the step count and the layer index. */
uint64_t fp_dropout_key(uint64_t seed, int64_t step, int layer);

FP_DECLARE(float, f32)
FP_DECLARE(double, f64)

#undef FP_DECLARE

#endif

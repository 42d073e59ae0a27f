/* fastprop's C API: the element-wise work that BLAS cannot do, for float32 and float64.
 *
 * Each operation has one prototype here, taking the dtype as its first argument and its arrays as
 * untyped pointers; kernels.c instantiates one body per operation for float and double (from
 * activations.h, losses.h, optimizers.h and dropout.h) and dispatches on the dtype. Matrices are
 * row-major and dense: element (i, j) of an (n, m) matrix is at p[i * m + j]. Scalars are passed
 * as double and rounded to the dtype once. The callers (fastprop/_kernels.pyx, _engine.pyx) check
 * every size and pointer; these trust them. fastprop/_kernels.pxd declares all of this for Cython
 * and Python reads the constants from there.
 */
#ifndef FASTPROP_H
#define FASTPROP_H

#include <stddef.h>
#include <stdint.h>

/* Every entry point that takes a code (a dtype, an activation, a loss, an optimizer kind)
 * returns FP_OK, or FP_ERR_CODE for a code it does not know, having changed nothing; a value it
 * computes is written through a pointer. FP_ERR_NULL: a buffer it needs is NULL. */
enum fp_status { FP_OK = 0, FP_ERR_CODE = -1, FP_ERR_NULL = -2 };

/* Each kind of code counts from 0; its last member is the number of codes (a code is valid
 * exactly when 0 <= code < that number). */
enum fp_dtype { FP_FLOAT32 = 0, FP_FLOAT64 = 1, FP_N_DTYPES };

enum fp_activation {
    FP_IDENTITY = 0,
    FP_SIGMOID = 1,
    FP_TANH = 2,
    FP_RELU = 3,
    FP_LEAKY_RELU = 4,
    FP_SOFTMAX = 5, /* row-wise; only as the output of a softmax cross-entropy loss */
    FP_GELU = 6,    /* v Phi(v), Phi the standard normal CDF (erf) */
    FP_GELU_TANH = 7, /* torch's GELU(approximate="tanh") */
    FP_SILU = 8,    /* v sigmoid(v) */
    FP_ELU = 9,     /* v > 0 ? v : alpha (exp(v) - 1) */
    FP_SOFTPLUS = 10, /* log(1 + exp(v)), v above 20 (torch's threshold) */
    FP_MISH = 11,   /* v tanh(softplus(v)) */
    FP_N_ACTIVATIONS
};

enum fp_loss {
    FP_LOSS_MSE = 0,           /* mean over all elements of (a - y)^2 */
    FP_LOSS_HALF_SE = 1,       /* mean over samples of 1/2 sum_j (a_j - y_j)^2 */
    FP_LOSS_BCE = 2,           /* binary cross-entropy on a sigmoid output, mean over elements */
    FP_LOSS_SOFTMAX_XENT = 3,  /* softmax cross-entropy, mean over samples */
    FP_LOSS_MAE = 4,           /* mean over all elements of |a - y| */
    FP_LOSS_HUBER = 5,         /* mean over all elements of Huber(a - y), delta 1 */
    FP_LOSS_MULTILABEL_BCE = 6, /* binary cross-entropy summed over labels, mean over samples */
    FP_LOSS_HALF_MSE = 7,       /* mean over all elements of 1/2 (a - y)^2, with the gradient of
                                   half_squared_error: scikit-learn's squared loss */
    FP_N_LOSSES
};

enum fp_optimizer_kind {
    FP_OPT_SGD = 0,
    FP_OPT_MOMENTUM = 1,
    FP_OPT_ADAM = 2,
    FP_OPT_ADAMW = 3,
    FP_OPT_RMSPROP = 4,
    FP_N_OPTIMIZERS
};

/* An optimizer's hyperparameters (fastprop/optimizers.py fills it). */
typedef struct {
    int kind;
    int nesterov;
    double lr, momentum, beta1, beta2, eps, alpha, weight_decay;
    double max_norm; /* clip the gradients to this global L2 norm first; 0: no clipping */
    int eps_outside; /* Adam: epsilon added to sqrt(v) before the bias correction (scikit-learn's
                        form) instead of after it (torch's) */
    int lr_in_velocity; /* momentum: the buffer is a velocity of rate-scaled steps, v = mu v - lr g,
                           p += v (scikit-learn's form: v carries earlier rates when lr changes)
                           instead of torch's buffer of gradients, b = mu b + g, p -= lr b */
} fp_optimizer;

/* What the tables know of a code, for the callers that must not keep lists of their own:
 * an activation's derivative reads its pre-activation Z (else only its output A); a loss's
 * gradient is taken from the output's logits (the output activation's derivative folded into
 * it), it counts correct predictions (classification), per output element rather than per
 * sample, and the activation its output layer must have (-1: any element-wise one). */
typedef struct {
    const char *name; /* the code's name here, "FP_GELU": Python finds its codes by these */
    int needs_z;
} fp_activation_info;
typedef struct {
    const char *name; /* "FP_LOSS_MSE", ... */
    int from_logits, classification, per_element, output_activation;
} fp_loss_info;
int fp_activation_describe(int activation, fp_activation_info *info);
int fp_loss_describe(int loss, fp_loss_info *info);

/* The products of a narrow layer without BLAS (csrc/small.h): fp_small_layer says whether a layer
 * of n_in inputs and n_out outputs is narrow enough for them to beat BLAS (at most 32 weights, or
 * one output of at most FP_SMALL_MAX inputs); the kernels take any layer of at most FP_SMALL_MAX
 * weights and FP_SMALL_MAX_OUT outputs (their scratch lives on the stack). All matrices dense and
 * row-major.
 * Forward: Z = A W. Delta: dA = dZ W^T. Weight gradient: dW = alpha A^T dZ + beta dW (dW not read
 * when beta is 0), db = the column sums of dZ (+ db if accumulate). */
#define FP_SMALL_MAX 64
#define FP_SMALL_MAX_OUT 64
int fp_small_layer(ptrdiff_t n_in, ptrdiff_t n_out);
int fp_small_forward(int dtype, const void *A, const void *W, void *Z, ptrdiff_t n_samples,
                     ptrdiff_t n_in, ptrdiff_t n_out);
int fp_small_delta(int dtype, const void *dZ, const void *W, void *dA, ptrdiff_t n_samples,
                   ptrdiff_t n_in, ptrdiff_t n_out);
int fp_small_weight_gradient(int dtype, const void *A, const void *dZ, void *dW, void *db,
                             ptrdiff_t n_samples, ptrdiff_t n_in, ptrdiff_t n_out, double alpha,
                             double beta, int accumulate);

/* The number of state buffers (shaped like the parameters) an optimizer of this kind reads. */
int fp_optimizer_n_state(int kind, int *n_state);

/* Z += b (per column), then A = f(Z); Z may equal A (in place). `param` is the activation's one
 * parameter: leaky_relu's negative slope, elu's alpha (others ignore it). */
int fp_bias_activation(int dtype, void *Z, void *A, const void *b, ptrdiff_t n_samples,
                       ptrdiff_t n_out, int activation, double param);

/* dA *= f'(.), from the activation's output A and, for an activation whose derivative needs
 * it (fp_activation_describe), its pre-activation Z (else Z may be NULL). */
int fp_activation_backward(int dtype, void *dA, const void *A, const void *Z, ptrdiff_t n,
                           int activation, double param);

/* A first layer over CSR rows (sparse.h): row r of X holds values[k] at column indices[k], k in
 * [indptr[r], indptr[r + 1]); a batch is rows ids[0..n), or first .. first + n - 1 when ids is
 * NULL. fp_csr_product: Z = X_batch W (no bias); fp_csr_scatter: G += alpha X_batch^T dZ, in the
 * rows of G the batch names only. The caller checks the indices. */
int fp_csr_product(int dtype, const void *values, const int32_t *indices, const int64_t *indptr,
                   const int64_t *ids, ptrdiff_t first, ptrdiff_t n, const void *W,
                   ptrdiff_t n_out, void *Z);
int fp_csr_scatter(int dtype, const void *values, const int32_t *indices, const int64_t *indptr,
                   const int64_t *ids, ptrdiff_t first, ptrdiff_t n, const void *dZ,
                   ptrdiff_t n_out, void *G, double alpha);

/* db = sum over rows of dZ (+ db if accumulate). */
int fp_column_sum(int dtype, const void *dZ, ptrdiff_t n_samples, ptrdiff_t n_out, void *db,
                  int accumulate);

/* The mean loss of an output layer (Z its pre-activation, A = f(Z)) against targets Y, or integer
 * labels (softmax cross-entropy only; Y is then NULL), into *value; writes dL/dZ into dZ unless it
 * is NULL and adds the number of correct predictions to *n_correct (classification losses). With
 * sample_weight (NULL: none; else n_samples weights summing to n_samples), each sample's loss and
 * gradient count that many times. */
int fp_loss_gradient(int dtype, int loss, const void *Z, const void *A, const void *Y,
                     const int64_t *labels, const void *sample_weight, void *dZ,
                     ptrdiff_t n_samples, ptrdiff_t n_out, int activation, double param,
                     double *value, int64_t *n_correct);

/* One optimizer step over the flat buffers: clipping (scales grads in place), weight decay, the
 * update; state0, state1 are its state buffers (the momentum buffer; Adam's first and second
 * moments; RMSprop's square average; NULL when the kind reads fewer); t >= 1 counts the steps,
 * this one included. */
int fp_optimizer_step(int dtype, const fp_optimizer *opt, void *params, void *grads, void *state0,
                      void *state1, ptrdiff_t n, int64_t t);

/* *finite = 1 if every one of the n values is finite, else 0. */
int fp_all_finite(int dtype, const void *x, ptrdiff_t n, int *finite);
/* *total = sum of x[i]^2, in double, in a fixed order; fp_scale: y = a x, and the same sum of
 * x's squares into *squares. */
int fp_sum_of_squares(int dtype, const void *x, ptrdiff_t n, double *total);
int fp_scale(int dtype, void *y, const void *x, double a, ptrdiff_t n, double *squares);

/* params -= lr * grads over one flat buffer. */
int fp_sgd_update(int dtype, void *params, const void *grads, ptrdiff_t n, double lr);

/* Inverted dropout: M = 1/(1 - rate) where draw i of `key` (csrc/random.h) is >= rate, else 0;
 * D = A * M. */
int fp_dropout(int dtype, const void *A, void *M, void *D, ptrdiff_t n, uint64_t key,
               double rate);

/* x *= m, element-wise. */
int fp_mul(int dtype, void *x, const void *m, ptrdiff_t n);

/* Shuffles order[0..n) in place, a counter-based function of (seed, count): the same pair gives
 * the same permutation on every machine; fit draws epoch k's order with count k. */
void fp_shuffle(int64_t *order, ptrdiff_t n, uint64_t seed, uint64_t count);

/* The key of one dropout mask, from the model's seed, the step count and the layer index; and
 * the key from which the mask's element `first` on is drawn (a part of a batch starting at row
 * r of a layer n_out wide starts at element r n_out): masks of parts equal the whole's. */
uint64_t fp_dropout_key(uint64_t seed, int64_t step, int layer);
uint64_t fp_dropout_key_at(uint64_t seed, int64_t step, int layer, int64_t first);

/* The fork gate (gate.c): a pass brackets itself with fp_pass_begin/end, looks at
 * fp_fork_pending() between steps and parks there (fp_park) while a fork waits; the forking
 * thread calls fp_fork_prepare (returns once every running pass is parked) and, after the fork,
 * fp_fork_done(1 in the child, 0 in the parent). */
void fp_pass_begin(void);
void fp_pass_end(void);
int fp_fork_pending(void);
void fp_park(void);
void fp_fork_prepare(void);
void fp_fork_done(int child);

#endif

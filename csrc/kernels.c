/* The one place that names a dtype: each kernel body (activations.h, losses.h, optimizers.h,
 * dropout.h) is instantiated for float (_f32) and double (_f64), with the constants of each
 * dtype's exp, log1p and tanh, and fastprop.h's entry points dispatch on the dtype argument
 * (an unknown dtype is FP_ERR_CODE, as every unknown code). */
#include <string.h>
#include <tgmath.h>
#include "fastprop.h"
#include "random.h"

/* exp(r) on |r| <= ln2 / 2. float: 1 / k!, its Taylor coefficients, to degree 7 (within 6e-9,
 * a tenth of float's unit in the last place). double: a Chebyshev fit of degree 11 (mpmath's
 * chebyfit at 50 digits, rounded to double: within 1.7e-17 including that rounding, a thirteenth
 * of double's unit in the last place), where Taylor needs degree 13. */
static const double FP_EXP_TAYLOR[] = {
    1.0, 1.0, 1.0 / 2, 1.0 / 6, 1.0 / 24, 1.0 / 120, 1.0 / 720, 1.0 / 5040};
static const double FP_EXP_CHEBYSHEV[] = {
    1.0, 1.0, 0.5000000000000019, 0.1666666666666668, 0.0416666666664881, 0.008333333333319601,
    0.0013888888952314775, 0.00019841269890047113, 2.4801485482328494e-05,
    2.755724091857897e-06, 2.763263963904103e-07, 2.5110037605963777e-08};

/* tanh(x) / x as a polynomial in z = x^2 on z <= 1/4 (|x| < 1/2): Chebyshev fits (mpmath's
 * chebyfit at 50 digits), within 0.03 units in the last place of float and of double once their
 * coefficients are rounded to the dtype, where Taylor's series needs 9 and 18 terms. */
static const double FP_TANH_C32[] = {
    0.9999999996805498, -0.3333332412022052, 0.13332900258320793, -0.053893224570864574,
    0.02127382207560088, -0.00661201413471437};
static const double FP_TANH_C64[] = {
    1.0, -0.3333333333333308, 0.13333333333292816, -0.05396825394287032, 0.021869487718845705,
    -0.008863220134250503, 0.0035919465020130574, -0.0014544509176344551,
    0.0005831792400007558, -0.00021761442156422375, 5.663500915911182e-05};

#define REAL float
#define SFX f32
#define FP_UINT uint32_t
#define FP_MANT_BITS 23
#define FP_ROUND_MAGIC 12582912.0f /* 1.5 * 2^23 */
#define FP_ROUND_MAGIC_BITS 0x4B400000u
#define FP_EXP_MAX 88.37f          /* exp stays below FLT_MAX */
#define FP_EXP_MIN -87.33f         /* exp stays a normal float */
#define FP_LN2_HI 0.693145751953125
#define FP_LN2_LO 1.428606765330187045e-06
#define FP_EXP_DEGREE 7
#define FP_EXP_C FP_EXP_TAYLOR
#define FP_EXP_SPLIT 4
#define FP_EXP_SPLIT_SQUARINGS 2
#define FP_LOG1P_TERMS 6
#define FP_TANH_TERMS 6
#define FP_TANH_C FP_TANH_C32
#include "common.h"
#include "activations.h"
#include "losses.h"
#include "optimizers.h"
#include "dropout.h"
#include "small.h"
#include "sparse.h"
#undef REAL
#undef SFX
#undef FP_UINT
#undef FP_MANT_BITS
#undef FP_ROUND_MAGIC
#undef FP_ROUND_MAGIC_BITS
#undef FP_EXP_MAX
#undef FP_EXP_MIN
#undef FP_LN2_HI
#undef FP_LN2_LO
#undef FP_EXP_DEGREE
#undef FP_EXP_C
#undef FP_EXP_SPLIT
#undef FP_EXP_SPLIT_SQUARINGS
#undef FP_LOG1P_TERMS
#undef FP_TANH_TERMS
#undef FP_TANH_C
#undef FP_ACTIVATIONS
#undef FP_LOSSES

#define REAL double
#define SFX f64
#define FP_UINT uint64_t
#define FP_MANT_BITS 52
#define FP_ROUND_MAGIC 6755399441055744.0 /* 1.5 * 2^52 */
#define FP_ROUND_MAGIC_BITS 0x4338000000000000ull
#define FP_EXP_MAX 709.43
#define FP_EXP_MIN -708.39
#define FP_LN2_HI 6.93147180369123816490e-01
#define FP_LN2_LO 1.90821492927058770002e-10
#define FP_EXP_DEGREE 11
#define FP_EXP_C FP_EXP_CHEBYSHEV
#define FP_EXP_SPLIT 8
#define FP_EXP_SPLIT_SQUARINGS 3
#define FP_LOG1P_TERMS 16
#define FP_TANH_TERMS 11
#define FP_TANH_C FP_TANH_C64
#include "common.h"
#include "activations.h"
#include "losses.h"
#include "optimizers.h"
#include "dropout.h"
#include "small.h"
#include "sparse.h"

/* The dtype's instantiation of `name`, called with the same arguments (void pointers convert to
 * the dtype's pointers, double scalars round to it): FP_RETURN returns the status of a kernel
 * that has one, FP_INTO stores a kernel's value into *out, FP_RUN runs one that returns
 * nothing; an unknown dtype is FP_ERR_CODE. */
#define FP_RETURN(name, ...)                                                                       \
    switch (dtype) {                                                                                \
    case FP_FLOAT32:                                                                                \
        return name##_f32(__VA_ARGS__);                                                             \
    case FP_FLOAT64:                                                                                \
        return name##_f64(__VA_ARGS__);                                                             \
    default:                                                                                        \
        return FP_ERR_CODE;                                                                         \
    }
#define FP_INTO(out, name, ...)                                                                    \
    switch (dtype) {                                                                                \
    case FP_FLOAT32:                                                                                \
        *(out) = name##_f32(__VA_ARGS__);                                                           \
        return FP_OK;                                                                               \
    case FP_FLOAT64:                                                                                \
        *(out) = name##_f64(__VA_ARGS__);                                                           \
        return FP_OK;                                                                               \
    default:                                                                                        \
        return FP_ERR_CODE;                                                                         \
    }
#define FP_RUN(name, ...)                                                                          \
    switch (dtype) {                                                                                \
    case FP_FLOAT32:                                                                                \
        name##_f32(__VA_ARGS__);                                                                    \
        return FP_OK;                                                                               \
    case FP_FLOAT64:                                                                                \
        name##_f64(__VA_ARGS__);                                                                    \
        return FP_OK;                                                                               \
    default:                                                                                        \
        return FP_ERR_CODE;                                                                         \
    }

int fp_activation_describe(int activation, fp_activation_info *info)
{
    switch (activation) {
#define FP_CASE(CODE, F, DF, NEEDS_Z)                                                              \
    case CODE:                                                                                      \
        info->name = #CODE;                                                                         \
        info->needs_z = NEEDS_Z;                                                                    \
        return FP_OK;
        FP_ACTIVATIONS(FP_CASE)
#undef FP_CASE
    case FP_IDENTITY:
        info->name = "FP_IDENTITY";
        info->needs_z = 0;
        return FP_OK;
    case FP_SOFTMAX:
        info->name = "FP_SOFTMAX";
        info->needs_z = 0;
        return FP_OK;
    default:
        return FP_ERR_CODE;
    }
}

int fp_loss_describe(int loss, fp_loss_info *info)
{
    switch (loss) {
#define FP_CASE(CODE, KERNEL, DIVISOR, SCALE, FROM_LOGITS, CLASSIFICATION, PER_ELEMENT, OUTPUT)    \
    case CODE:                                                                                      \
        info->name = #CODE;                                                                         \
        info->from_logits = FROM_LOGITS;                                                            \
        info->classification = CLASSIFICATION;                                                      \
        info->per_element = PER_ELEMENT;                                                            \
        info->output_activation = OUTPUT;                                                           \
        return FP_OK;
        FP_LOSSES(FP_CASE)
#undef FP_CASE
    default:
        return FP_ERR_CODE;
    }
}

int fp_bias_activation(int dtype, void *Z, void *A, const void *b, ptrdiff_t n_samples,
                       ptrdiff_t n_out, int activation, double param)
{
    FP_RETURN(fp_bias_activation, Z, A, b, n_samples, n_out, activation, param);
}

int fp_activation_backward(int dtype, void *dA, const void *A, const void *Z, ptrdiff_t n,
                           int activation, double param)
{
    FP_RETURN(fp_activation_backward, dA, A, Z, n, activation, param);
}

int fp_column_sum(int dtype, const void *dZ, ptrdiff_t n_samples, ptrdiff_t n_out, void *db,
                  int accumulate)
{
    FP_RUN(fp_column_sum, dZ, n_samples, n_out, db, accumulate);
}

int fp_loss_gradient(int dtype, int loss, const void *Z, const void *A, const void *Y,
                     const int64_t *labels, const void *sample_weight, void *dZ,
                     ptrdiff_t n_samples, ptrdiff_t n_out, int activation, double param,
                     double *value, int64_t *n_correct)
{
    fp_loss_info info;
    fp_activation_info act;
    if (fp_loss_describe(loss, &info) != FP_OK || fp_activation_describe(activation, &act) !=
        FP_OK || (dtype != FP_FLOAT32 && dtype != FP_FLOAT64))
        return FP_ERR_CODE;
    if (n_samples <= 0 || n_out <= 0) {
        *value = 0.0;
        return FP_OK;
    }
    if (sample_weight) {
        FP_RETURN(fp_loss_gradient_weighted, loss, Z, A, Y, labels, sample_weight, dZ, n_samples,
                  n_out, activation, param, value, n_correct);
    }
    FP_RETURN(fp_loss_gradient, loss, Z, A, Y, labels, dZ, n_samples, n_out, activation, param,
              value, n_correct);
}

int fp_optimizer_step(int dtype, const fp_optimizer *opt, void *params, void *grads, void *state0,
                      void *state1, ptrdiff_t n, int64_t t)
{
    int n_state;
    if (fp_optimizer_n_state(opt->kind, &n_state) != FP_OK)
        return FP_ERR_CODE;
    if ((n_state > 0 && state0 == NULL) || (n_state > 1 && state1 == NULL))
        return FP_ERR_NULL;
    FP_RETURN(fp_optimizer_step, opt, params, grads, state0, state1, n, t);
}

int fp_sgd_update(int dtype, void *params, const void *grads, ptrdiff_t n, double lr)
{
    FP_RUN(fp_sgd_update, params, grads, n, lr);
}

int fp_all_finite(int dtype, const void *x, ptrdiff_t n, int *finite)
{
    FP_INTO(finite, fp_all_finite, x, n);
}

int fp_sum_of_squares(int dtype, const void *x, ptrdiff_t n, double *total)
{
    FP_INTO(total, fp_sum_of_squares, x, n);
}

int fp_scale(int dtype, void *y, const void *x, double a, ptrdiff_t n, double *squares)
{
    FP_INTO(squares, fp_scale, y, x, a, n);
}

int fp_dropout(int dtype, const void *A, void *M, void *D, ptrdiff_t n, uint64_t key, double rate)
{
    FP_RUN(fp_dropout, A, M, D, n, key, rate);
}

int fp_mul(int dtype, void *x, const void *m, ptrdiff_t n)
{
    FP_RUN(fp_mul, x, m, n);
}

int fp_csr_product(int dtype, const void *values, const int32_t *indices, const int64_t *indptr,
                   const int64_t *ids, ptrdiff_t first, ptrdiff_t n, const void *W,
                   ptrdiff_t n_out, void *Z)
{
    FP_RUN(fp_csr_product, values, indices, indptr, ids, first, n, W, n_out, Z);
}

int fp_csr_scatter(int dtype, const void *values, const int32_t *indices, const int64_t *indptr,
                   const int64_t *ids, ptrdiff_t first, ptrdiff_t n, const void *dZ,
                   ptrdiff_t n_out, void *G, double alpha)
{
    FP_RUN(fp_csr_scatter, values, indices, indptr, ids, first, n, dZ, n_out, G, alpha);
}

int fp_small_layer(ptrdiff_t n_in, ptrdiff_t n_out)
{
    /* measured against OpenBLAS (benchmarks/small_products.py): these loops win for up to 32
     * weights, and for one output of up to 64 inputs; BLAS wins above (8 x 8 already) */
    return n_in > 0 && n_out > 0 && (n_in * n_out <= 32 || (n_out == 1 && n_in <= FP_SMALL_MAX));
}

int fp_small_forward(int dtype, const void *A, const void *W, void *Z, ptrdiff_t n_samples,
                     ptrdiff_t n_in, ptrdiff_t n_out)
{
    FP_RUN(fp_small_forward, A, W, Z, n_samples, n_in, n_out);
}

int fp_small_delta(int dtype, const void *dZ, const void *W, void *dA, ptrdiff_t n_samples,
                   ptrdiff_t n_in, ptrdiff_t n_out)
{
    FP_RUN(fp_small_delta, dZ, W, dA, n_samples, n_in, n_out);
}

int fp_small_weight_gradient(int dtype, const void *A, const void *dZ, void *dW, void *db,
                             ptrdiff_t n_samples, ptrdiff_t n_in, ptrdiff_t n_out, double alpha,
                             double beta, int accumulate)
{
    FP_RUN(fp_small_weight_gradient, A, dZ, dW, db, n_samples, n_in, n_out, alpha, beta,
           accumulate);
}

int fp_optimizer_n_state(int kind, int *n_state)
{
    switch (kind) {
    case FP_OPT_SGD:
        *n_state = 0;
        return FP_OK;
    case FP_OPT_MOMENTUM:
    case FP_OPT_RMSPROP:
        *n_state = 1;
        return FP_OK;
    case FP_OPT_ADAM:
    case FP_OPT_ADAMW:
        *n_state = 2;
        return FP_OK;
    default:
        return FP_ERR_CODE;
    }
}

void fp_shuffle(int64_t *order, ptrdiff_t n, uint64_t seed, uint64_t count)
{
    /* Fisher-Yates from the top; draw i mapped to [0, i] by a multiply-high (no modulo bias to
     * speak of at these sizes) */
    const uint64_t key = fp_random_key(seed ^ 0x5DEECE66Dull, (int64_t)count, 255);
    for (ptrdiff_t i = n - 1; i > 0; i--) {
        const uint64_t z = fp_random_draw(key, (uint64_t)i);
        const ptrdiff_t j = (ptrdiff_t)(((unsigned __int128)z * (uint64_t)(i + 1)) >> 64);
        const int64_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

uint64_t fp_dropout_key(uint64_t seed, int64_t step, int layer)
{
    return fp_random_key(seed, step, layer);
}

uint64_t fp_dropout_key_at(uint64_t seed, int64_t step, int layer, int64_t first)
{
    return fp_random_key(seed, step, layer) + (uint64_t)first * FP_RANDOM_STRIDE;
}

/* The one place that names a dtype: each kernel body (activations.h, losses.h, optimizers.h,
 * dropout.h) is instantiated for float (_f32) and double (_f64), with the constants of each
 * dtype's exp and log1p, and fastprop.h's entry points dispatch on the dtype argument. */
#include <string.h>
#include <tgmath.h>
#include "fastprop.h"

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

/* The dtype's instantiation of `name`, called with the same arguments (void pointers convert to
 * the dtype's pointers, double scalars round to it). */
#define FP_CALL(name, ...) (dtype == FP_FLOAT32 ? name##_f32(__VA_ARGS__) : name##_f64(__VA_ARGS__))

void fp_bias_activation(int dtype, void *Z, void *A, const void *b, ptrdiff_t n_samples,
                        ptrdiff_t n_out, int activation, double negative_slope)
{
    FP_CALL(fp_bias_activation, Z, A, b, n_samples, n_out, activation, negative_slope);
}

void fp_activation_backward(int dtype, void *dA, const void *A, ptrdiff_t n, int activation,
                            double negative_slope)
{
    FP_CALL(fp_activation_backward, dA, A, n, activation, negative_slope);
}

void fp_column_sum(int dtype, const void *dZ, ptrdiff_t n_samples, ptrdiff_t n_out, void *db,
                   int accumulate)
{
    FP_CALL(fp_column_sum, dZ, n_samples, n_out, db, accumulate);
}

double fp_loss_gradient(int dtype, int loss, const void *Z, const void *A, const void *Y,
                        const int64_t *labels, const void *sample_weight, void *dZ,
                        ptrdiff_t n_samples, ptrdiff_t n_out, int activation,
                        double negative_slope, int64_t *n_correct)
{
    if (n_samples <= 0 || n_out <= 0)
        return 0.0;
    if (sample_weight)
        return FP_CALL(fp_loss_gradient_weighted, loss, Z, A, Y, labels, sample_weight, dZ,
                       n_samples, n_out, activation, negative_slope, n_correct);
    return FP_CALL(fp_loss_gradient, loss, Z, A, Y, labels, dZ, n_samples, n_out, activation,
                   negative_slope, n_correct);
}

void fp_optimizer_step(int dtype, const fp_optimizer *opt, void *params, void *grads, void *state0,
                       void *state1, ptrdiff_t n, int64_t t)
{
    FP_CALL(fp_optimizer_step, opt, params, grads, state0, state1, n, t);
}

void fp_sgd_update(int dtype, void *params, const void *grads, ptrdiff_t n, double lr)
{
    FP_CALL(fp_sgd_update, params, grads, n, lr);
}

int fp_all_finite(int dtype, const void *x, ptrdiff_t n)
{
    return FP_CALL(fp_all_finite, x, n);
}

void fp_dropout(int dtype, const void *A, void *M, void *D, ptrdiff_t n, uint64_t key, double rate)
{
    FP_CALL(fp_dropout, A, M, D, n, key, rate);
}

void fp_mul(int dtype, void *x, const void *m, ptrdiff_t n)
{
    FP_CALL(fp_mul, x, m, n);
}

int fp_small_layer(ptrdiff_t n_in, ptrdiff_t n_out)
{
    /* measured against OpenBLAS (benchmarks/small_products.py): these loops win for up to 32
     * weights, and for one output of up to 64 inputs; BLAS wins above (8 x 8 already) */
    return n_in > 0 && n_out > 0 && (n_in * n_out <= 32 || (n_out == 1 && n_in <= FP_SMALL_MAX));
}

void fp_small_forward(int dtype, const void *A, const void *W, void *Z, ptrdiff_t n_samples,
                      ptrdiff_t n_in, ptrdiff_t n_out)
{
    FP_CALL(fp_small_forward, A, W, Z, n_samples, n_in, n_out);
}

void fp_small_delta(int dtype, const void *dZ, const void *W, void *dA, ptrdiff_t n_samples,
                    ptrdiff_t n_in, ptrdiff_t n_out)
{
    FP_CALL(fp_small_delta, dZ, W, dA, n_samples, n_in, n_out);
}

void fp_small_weight_gradient(int dtype, const void *A, const void *dZ, void *dW, void *db,
                              ptrdiff_t n_samples, ptrdiff_t n_in, ptrdiff_t n_out, double alpha,
                              double beta, int accumulate)
{
    FP_CALL(fp_small_weight_gradient, A, dZ, dW, db, n_samples, n_in, n_out, alpha, beta,
            accumulate);
}

int fp_optimizer_n_state(int kind)
{
    switch (kind) {
    case FP_OPT_MOMENTUM:
    case FP_OPT_RMSPROP:
        return 1;
    case FP_OPT_ADAM:
    case FP_OPT_ADAMW:
        return 2;
    default:
        return 0;
    }
}

void fp_shuffle(int64_t *order, ptrdiff_t n, uint64_t seed, uint64_t count)
{
    /* Fisher-Yates from the top; draw i is splitmix64 of (key + i), mapped to [0, i] by a
     * multiply-high (no modulo bias to speak of at these sizes) */
    const uint64_t key = fp_dropout_key(seed ^ 0x5DEECE66Dull, (int64_t)count, 255);
    for (ptrdiff_t i = n - 1; i > 0; i--) {
        uint64_t z = key + (uint64_t)i * 0x9E3779B97F4A7C15ull;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        const ptrdiff_t j = (ptrdiff_t)(((unsigned __int128)z * (uint64_t)(i + 1)) >> 64);
        const int64_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

uint64_t fp_dropout_key(uint64_t seed, int64_t step, int layer)
{
    uint64_t z = seed ^ ((uint64_t)step * 0xD1B54A32D192ED03ull) ^ ((uint64_t)layer << 56);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

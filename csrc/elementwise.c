/* Instantiates elementwise_impl.h for float (_f32) and double (_f64), with the constants of
 * each dtype's exp and log1p. */
#include <string.h>
#include <tgmath.h>
#include "fastprop.h"

/* 1 / k!, the Taylor coefficients of exp */
static const double FP_EXP_C[] = {
    1.0, 1.0, 1.0 / 2, 1.0 / 6, 1.0 / 24, 1.0 / 120, 1.0 / 720, 1.0 / 5040, 1.0 / 40320,
    1.0 / 362880, 1.0 / 3628800, 1.0 / 39916800, 1.0 / 479001600, 1.0 / 6227020800.0};

uint64_t fp_dropout_key(uint64_t seed, int64_t step, int layer)
{
    uint64_t z = seed ^ ((uint64_t)step * 0xD1B54A32D192ED03ull) ^ ((uint64_t)layer << 56);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

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
#define FP_LOG1P_TERMS 6
#include "elementwise_impl.h"
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
#undef FP_LOG1P_TERMS

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
#define FP_EXP_DEGREE 13
#define FP_LOG1P_TERMS 16
#include "elementwise_impl.h"

/* What every kernel body shares: the multiversioning and threading macros, a deterministic
 * vectorized sum, and vectorizable exp, expm1, tanh, log1p and the normal CDF. Included once per dtype by kernels.c, with REAL
 * (float or double), SFX (f32 or f64) and the dtype's exp constants defined; the macros are
 * defined once. */
#ifndef FP_COMMON_ONCE
#define FP_COMMON_ONCE

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

/* Narrow matrices are walked in chunks of a whole number of rows, up to this many elements. */
#ifndef FP_TILE
#define FP_TILE 64
#endif

/* The element functions (exp, tanh, the activations' helpers) are always inlined: called from
 * a loop, they must become part of it for the loop to vectorize; GCC's own budget stops
 * inlining them once a function calls them from many places (fp_bias_activation's table). */
#if defined(__GNUC__)
#define FP_INLINE static inline __attribute__((always_inline))
#else
#define FP_INLINE static inline
#endif

#define FP_CAT_(a, b) a##_##b
#define FP_CAT(a, b) FP_CAT_(a, b)
#define FP_NAME(name) FP_CAT(name, SFX)

/* Sums EXPR(i) over i in [0, n) into a double: 8 lanes of REAL within chunks of 512 elements
 * (a reduction the compiler vectorizes without reassociating anything itself), each chunk's
 * total added in double. Deterministic: the order never depends on threads or alignment. */
#define FP_LANE_SUM(total, n, EXPR)                                                                \
    do {                                                                                            \
        for (ptrdiff_t lo_ = 0; lo_ < (n); lo_ += 512) {                                            \
            const ptrdiff_t hi_ = lo_ + 512 < (n) ? lo_ + 512 : (n);                                \
            REAL lane_[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                               \
            ptrdiff_t i = lo_;                                                                      \
            for (; i + 8 <= hi_; i += 8)                                                            \
                for (int k_ = 0; k_ < 8; k_++) {                                                    \
                    const ptrdiff_t ik_ = i + k_;                                                   \
                    lane_[k_] += (EXPR(ik_));                                                       \
                }                                                                                   \
            double chunk_ = 0;                                                                      \
            for (; i < hi_; i++)                                                                    \
                chunk_ += (double)(EXPR(i));                                                        \
            for (int k_ = 0; k_ < 8; k_++)                                                          \
                chunk_ += (double)lane_[k_];                                                        \
            (total) += chunk_;                                                                      \
        }                                                                                           \
    } while (0)

#endif /* FP_COMMON_ONCE */

/* exp(x) in a form the compiler vectorizes: x = n ln2 + r with |r| <= ln2 / 2 (Cody-Waite),
 * exp(r) by a polynomial (kernels.c: within two units in the last place), and 2^n added to the
 * exponent bits. Above FP_EXP_MAX the result is inf, below FP_EXP_MIN (where it would be
 * denormal) it is 0, as with flush-to-zero; NaN stays NaN. */
FP_INLINE REAL FP_NAME(fp_exp)(REAL x)
{
    REAL c = x > FP_EXP_MAX ? FP_EXP_MAX : x;
    c = c < FP_EXP_MIN ? FP_EXP_MIN : c;
    const REAL t = c * (REAL)1.44269504088896340736 + FP_ROUND_MAGIC; /* rounds c / ln2 */
    const REAL n = t - FP_ROUND_MAGIC;
    REAL r = c - n * (REAL)FP_LN2_HI;
    r = r - n * (REAL)FP_LN2_LO;
    /* the polynomial as two Horner chains that run side by side, lo (terms below r^FP_EXP_SPLIT)
     * + r^FP_EXP_SPLIT hi (the rest, below 1e-8 of the total): half the latency of one chain */
    REAL lo = (REAL)FP_EXP_C[FP_EXP_SPLIT - 1], hi = (REAL)FP_EXP_C[FP_EXP_DEGREE], rs = r;
#pragma GCC unroll 16
    for (int k = FP_EXP_SPLIT - 2; k >= 0; k--)
        lo = lo * r + (REAL)FP_EXP_C[k];
#pragma GCC unroll 16
    for (int k = FP_EXP_DEGREE - 1; k >= FP_EXP_SPLIT; k--)
        hi = hi * r + (REAL)FP_EXP_C[k];
#pragma GCC unroll 4
    for (int k = 0; k < FP_EXP_SPLIT_SQUARINGS; k++) /* r^FP_EXP_SPLIT = r^(2^squarings) */
        rs = rs * rs;
    REAL p = lo + rs * hi;
    FP_UINT bt, bp;
    memcpy(&bt, &t, sizeof bt);
    memcpy(&bp, &p, sizeof bp);
    bp += (bt - FP_ROUND_MAGIC_BITS) << FP_MANT_BITS; /* the low bits of t hold n */
    memcpy(&p, &bp, sizeof p);
    p = x > FP_EXP_MAX ? (REAL)INFINITY : p;
    p = x < FP_EXP_MIN ? (REAL)0 : p;
    return x != x ? x : p;
}

/* tanh(x) in a form the compiler vectorizes: for |x| >= 1/2, 1 - 2 / (exp(2|x|) + 1) (its
 * cancellation costs at most about a bit there); below, a polynomial in x^2 for tanh(x) / x
 * (kernels.c); the sign restored at the end. Both are computed and one is
 * selected, so the loop has no branch. NaN stays NaN; +-inf give +-1. */
FP_INLINE REAL FP_NAME(fp_tanh)(REAL x)
{
    const REAL a = fabs(x);
    const REAL e = FP_NAME(fp_exp)((REAL)2 * a);
    const REAL big = (REAL)1 - (REAL)2 / (e + (REAL)1);
    const REAL z = a * a;
    REAL p = (REAL)FP_TANH_C[FP_TANH_TERMS - 1];
#pragma GCC unroll 20
    for (int k = FP_TANH_TERMS - 2; k >= 0; k--)
        p = p * z + (REAL)FP_TANH_C[k];
    REAL r = a < (REAL)0.5 ? a * p : big;
    r = x < 0 ? -r : r;
    return x != x ? x : r;
}

/* log(1 + x) for x in [0, 1], vectorizable: 2 atanh(s) with s = x / (2 + x) in [0, 1/3]. */
FP_INLINE REAL FP_NAME(fp_log1p01)(REAL x)
{
    const REAL s = x / ((REAL)2 + x);
    const REAL z = s * s;
    REAL p = (REAL)1 / (REAL)(2 * FP_LOG1P_TERMS + 1);
#pragma GCC unroll 20
    for (int k = FP_LOG1P_TERMS - 1; k >= 0; k--)
        p = p * z + (REAL)1 / (REAL)(2 * k + 1);
    return (REAL)2 * s * p;
}

/* exp(x) - 1 without cancellation near 0: for |x| < ln2 / 2, x q(x) with q exp's polynomial (see
 * fp_exp) less its constant term, divided by x; beyond, exp(x) - 1, whose subtraction costs at
 * most about a unit in the last place there. Both are computed and one selected. */
FP_INLINE REAL FP_NAME(fp_expm1)(REAL x)
{
    REAL q = (REAL)FP_EXP_C[FP_EXP_DEGREE];
#pragma GCC unroll 16
    for (int k = FP_EXP_DEGREE - 1; k >= 1; k--)
        q = q * x + (REAL)FP_EXP_C[k];
    const REAL small = x * q;
    const REAL big = FP_NAME(fp_exp)(x) - (REAL)1;
    return fabs(x) < (REAL)0.34657359027997264 ? small : big;
}

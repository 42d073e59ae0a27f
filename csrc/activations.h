/* The activations, forward and derivative side by side: one row of FP_ACTIVATIONS per function,
 * X(CODE, F, DF, NEEDS_Z): F is f(v) of the pre-activation v; DF is dL/du from d = dL/da, the
 * output a = f(v) and, when NEEDS_Z is 1, v itself (the caller then keeps Z for that layer; a row
 * whose NEEDS_Z is 0 cannot name v in DF). `param` is the activation's one parameter (leaky_relu's
 * slope, elu's alpha). Adding an activation is one row here (with its helpers above the table),
 * its code in fastprop.h and its row in fastprop/activations.py.
 * Identity (f = v, f' = 1) and softmax (row-wise, its derivative fused with the cross-entropy in
 * losses.h) are the two without a row. Included once per dtype by kernels.c. */

/* sigmoid(v), and 1 - sigmoid(v) in *complement, from e = exp(-|v|) in (0, 1]: neither
 * overflows, neither cancels. */
FP_INLINE REAL FP_NAME(fp_sigmoid_pair)(REAL v, REAL *complement)
{
    const REAL e = FP_NAME(fp_exp)(-fabs(v));
    const REAL q = (REAL)1 / ((REAL)1 + e), eq = e * q;
    *complement = v >= 0 ? eq : q;
    return v >= 0 ? q : eq;
}

#ifndef FP_PHI_TABLES /* once, not per dtype */
#define FP_PHI_TABLES
/* The normal CDF Phi (fp_ncdf below), by Chebyshev fits (mpmath's chebyfit at 40 digits):
 * (Phi(v) - 1/2) / v as a polynomial in v^2 on |v| < 3/4 (within 1.2e-17 and 2.5e-9 of it,
 * relative, for double and float), and S(u) = u Phi(-u) exp(u^2 / 2) (nearly flat: its terms
 * cancel little, at most a factor 2.5) as a polynomial in t = (u - c) / (u + c) on [3/4, 38]
 * with c = 5 (double: within 2e-18) and on [3/4, 13.3] with c = 3 (float: within 6e-9); beyond
 * those ends exp(-u^2 / 2) is 0 in the dtype. */
static const double FP_PHI_SMALL_C64[] = {
    0.39894228040143265, -0.06649038006690419, 0.009973557009976547, -0.001187328214396983,
    0.00011543467768540948, -9.444605057900199e-06, 6.658139159575593e-07,
    -4.0950399522417176e-08, 2.005713145365612e-09,};
static const double FP_PHI_SMALL_C32[] = {
    0.3989422803921482, -0.06649037887790578, 0.009973532286919138, -0.0011871397032966816,
    0.00011478187349990901, -8.390892710221637e-06,};
static const double FP_PHI_TAIL_C64[] = {
    0.3845965248750315, 0.05190527343000305, -0.0850384434600403, 0.09088622964934517,
    -0.07425639525044622, 0.04795086373171991, -0.02416178595365726, 0.008900845019722188,
    -0.0018956230774703974, -0.00012648521105501187, 0.00024276160584809544,
    -5.456903608627274e-05, -1.654046133156715e-05, 1.033026776058811e-05, 6.046591144002011e-07,
    -1.551243507132281e-06, 5.077153245316256e-08, 2.3542558367471177e-07, -1.517194652871758e-08,
    -3.5832716213591484e-08, 1.6649751932206933e-09, 4.00873296420958e-09,};
static const double FP_PHI_TAIL_C32[] = {
    0.36454184660998723, 0.10987586104874185, -0.13965733360909788, 0.0913770260935766,
    -0.02885865421833121, -0.0017411062901259331, 0.003967954997366183, -2.8814763242812368e-05,
    -0.0005509495300972865, -1.038210958027426e-05,};
/* A constant of the dtype being instantiated: float's, or double's. Veltkamp's splitter is
 * 2^12 + 1 for float (two 12-bit halves) and 2^27 + 1 for double. */
#define FP_PHI(f32, f64) (sizeof(REAL) == sizeof(float) ? (f32) : (f64))
#endif

/* Phi(v), the standard normal CDF (1 + erf(v / sqrt 2)) / 2, vectorizable, within a few units in
 * the last place over the whole line (erfc's tail included, where 1 + erf would cancel); and
 * *gauss = exp(-v^2 / 2), which the derivative of v Phi(v) reads. Both pieces are computed and
 * one selected, so the loop has no branch:
 * - |v| < 3/4: Phi = 1/2 + v P(v^2);
 * - beyond, with u = |v|: Phi(-u) = exp(-u^2 / 2) S(t) / u, t = (u - c) / (u + c) (S smooth
 *   and nearly flat in t; the fits above), and Phi(u) = 1 - Phi(-u). exp(-u^2 / 2) reads u^2
 *   as an exact sum hi + lo (Veltkamp's split, Dekker's product): rounding u^2 alone would cost
 *   u^2 units.
 * u is clamped where exp(-u^2 / 2) is already 0 (the fit's end); NaN stays NaN. */
FP_INLINE REAL FP_NAME(fp_ncdf)(REAL v, REAL *gauss)
{
    REAL u = fabs(v);
    u = u > (REAL)FP_PHI(13.3, 38.0) ? (REAL)FP_PHI(13.3, 38.0) : u;
    const REAL split = u * (REAL)FP_PHI(4097.0, 134217729.0);
    const REAL uh = split - (split - u), ul = u - uh;
    const REAL hi = u * u;
    const REAL lo = ((uh * uh - hi) + (REAL)2 * uh * ul) + ul * ul;
    const REAL g = FP_NAME(fp_exp)((REAL)-0.5 * hi) * ((REAL)1 - (REAL)0.5 * lo);
    const REAL s = v * v;
    REAL p = (REAL)FP_PHI(FP_PHI_SMALL_C32, FP_PHI_SMALL_C64)[FP_PHI(6, 9) - 1];
#pragma GCC unroll 16
    for (int k = FP_PHI(6, 9) - 2; k >= 0; k--)
        p = p * s + (REAL)FP_PHI(FP_PHI_SMALL_C32, FP_PHI_SMALL_C64)[k];
    const REAL small = (REAL)0.5 + v * p;
    const REAL t = (u - (REAL)FP_PHI(3.0, 5.0)) / (u + (REAL)FP_PHI(3.0, 5.0));
    REAL r = (REAL)FP_PHI(FP_PHI_TAIL_C32, FP_PHI_TAIL_C64)[FP_PHI(10, 22) - 1];
#pragma GCC unroll 32
    for (int k = FP_PHI(10, 22) - 2; k >= 0; k--)
        r = r * t + (REAL)FP_PHI(FP_PHI_TAIL_C32, FP_PHI_TAIL_C64)[k];
    const REAL q = g * r / u;
    const REAL tail = v < 0 ? q : (REAL)1 - q;
    *gauss = g;
    return u < (REAL)0.75 ? small : tail;
}

/* gelu(v) = v Phi(v); gelu'(v) = Phi(v) + v phi(v). At -inf the limit 0, not -inf * 0. */
FP_INLINE REAL FP_NAME(fp_gelu)(REAL v)
{
    REAL g;
    const REAL phi = FP_NAME(fp_ncdf)(v, &g);
    return phi == 0 ? (REAL)0 : v * phi;
}

FP_INLINE REAL FP_NAME(fp_gelu_grad)(REAL d, REAL v)
{
    REAL g;
    const REAL phi = FP_NAME(fp_ncdf)(v, &g);
    return d * (phi + v * (g * (REAL)0.39894228040143267794)); /* 1 / sqrt(2 pi) */
}

/* torch's tanh approximation 1/2 v (1 + tanh(y / 2)) = v sigmoid(y), y = 2 sqrt(2 / pi)
 * (v + 0.044715 v^3): the sigmoid form does not cancel for negative v. */
#define FP_GELU_K 1.5957691216057307117 /* 2 sqrt(2 / pi) */
#define FP_GELU_C 0.044715
FP_INLINE REAL FP_NAME(fp_gelu_tanh)(REAL v)
{
    REAL c;
    const REAL y = v * ((REAL)FP_GELU_K + (REAL)(FP_GELU_K * FP_GELU_C) * (v * v));
    return v * FP_NAME(fp_sigmoid_pair)(y, &c);
}

FP_INLINE REAL FP_NAME(fp_gelu_tanh_grad)(REAL d, REAL v)
{
    REAL c;
    const REAL v2 = v * v;
    const REAL y = v * ((REAL)FP_GELU_K + (REAL)(FP_GELU_K * FP_GELU_C) * v2);
    const REAL s = FP_NAME(fp_sigmoid_pair)(y, &c);
    const REAL dy = (REAL)FP_GELU_K + (REAL)(3 * FP_GELU_K * FP_GELU_C) * v2;
    return d * (s + v * (s * c) * dy);
}

/* silu(v) = v sigmoid(v); silu'(v) = s + v s (1 - s). */
FP_INLINE REAL FP_NAME(fp_silu_grad)(REAL d, REAL v)
{
    REAL c;
    const REAL s = FP_NAME(fp_sigmoid_pair)(v, &c);
    return d * (s + v * (s * c));
}

/* softplus(v) = log(1 + exp(v)) = max(v, 0) + log1p(exp(-|v|)), and v above torch's threshold
 * 20 (where torch returns v itself); softplus'(v) = sigmoid(v), 1 above the threshold. */
FP_INLINE REAL FP_NAME(fp_softplus)(REAL v)
{
    const REAL f = (v > 0 ? v : (REAL)0) + FP_NAME(fp_log1p01)(FP_NAME(fp_exp)(-fabs(v)));
    return v > (REAL)20 ? v : f;
}

FP_INLINE REAL FP_NAME(fp_softplus_grad)(REAL d, REAL v)
{
    REAL c;
    const REAL s = FP_NAME(fp_sigmoid_pair)(v, &c);
    return v > (REAL)20 ? d : d * s;
}

/* mish(v) = v tanh(softplus(v)) (torch.nn.Mish). With e = exp(v) and n = e (e + 2),
 * tanh(log(1 + e)) = n / (n + 2): about e for v < 0, with no cancellation, and 1 in the dtype long
 * before v = 40, where e is capped so that n cannot overflow. mish'(v) = t + v (1 - t^2)
 * sigmoid(v), 1 - t^2 = 4 (n + 1) / (n + 2)^2 written without cancellation; 1 above 40. */
FP_INLINE REAL FP_NAME(fp_mish)(REAL v)
{
    const REAL e = FP_NAME(fp_exp)(v < (REAL)40 ? v : (REAL)40);
    const REAL n = e * (e + (REAL)2);
    return v * (n / (n + (REAL)2));
}

FP_INLINE REAL FP_NAME(fp_mish_grad)(REAL d, REAL v)
{
    const REAL e = FP_NAME(fp_exp)(v < (REAL)40 ? v : (REAL)40);
    const REAL n = e * (e + (REAL)2), m = n + (REAL)2;
    const REAL slope = n / m + v * ((((REAL)4 * (n + (REAL)1)) / m) / m) * (e / ((REAL)1 + e));
    return v > (REAL)40 ? d : d * slope;
}

#define FP_ACTIVATIONS(X)                                                                          \
    X(FP_SIGMOID, (REAL)1 / ((REAL)1 + FP_NAME(fp_exp)(-v)), d * (a * ((REAL)1 - a)), 0)        \
    X(FP_TANH, FP_NAME(fp_tanh)(v), d * ((REAL)1 - a * a), 0)                                     \
    X(FP_RELU, v > 0 ? v : (REAL)0, a > 0 ? d : (REAL)0, 0)                                       \
    X(FP_LEAKY_RELU, v > 0 ? v : param * v, a > 0 ? d : param * d, 0)                             \
    X(FP_GELU, FP_NAME(fp_gelu)(v), FP_NAME(fp_gelu_grad)(d, v), 1)                               \
    X(FP_GELU_TANH, FP_NAME(fp_gelu_tanh)(v), FP_NAME(fp_gelu_tanh_grad)(d, v), 1)                \
    X(FP_SILU, v / ((REAL)1 + FP_NAME(fp_exp)(-v)), FP_NAME(fp_silu_grad)(d, v), 1)              \
    X(FP_ELU, v > 0 ? v : param * FP_NAME(fp_expm1)(v), v > 0 ? d : d * (param * FP_NAME(fp_exp)(v)), 1) \
    X(FP_SOFTPLUS, FP_NAME(fp_softplus)(v), FP_NAME(fp_softplus_grad)(d, v), 1)                  \
    X(FP_MISH, FP_NAME(fp_mish)(v), FP_NAME(fp_mish_grad)(d, v), 1)

static void FP_NAME(fp_softmax_rows)(REAL *A, ptrdiff_t n_samples, ptrdiff_t n_out)
{
    for (ptrdiff_t i = 0; i < n_samples; i++) {
        REAL *a = A + i * n_out;
        REAL m = a[0];
        for (ptrdiff_t j = 1; j < n_out; j++)
            m = a[j] > m ? a[j] : m;
        REAL s = 0;
        for (ptrdiff_t j = 0; j < n_out; j++) {
            a[j] = FP_NAME(fp_exp)(a[j] - m);
            s += a[j];
        }
        REAL inv = (REAL)1 / s;
        for (ptrdiff_t j = 0; j < n_out; j++)
            a[j] *= inv;
    }
}

FP_MULTIVERSION static int FP_NAME(fp_bias_activation)(REAL *Z, REAL *A, const REAL *b,
                                                       ptrdiff_t n_samples, ptrdiff_t n_out,
                                                       int activation, REAL param)
{
    const ptrdiff_t n = n_samples * n_out;
    if (activation < 0 || activation >= FP_N_ACTIVATIONS)
        return FP_ERR_CODE;
    if (n <= 0)
        return FP_OK;
    /* One pass: v = Z + b, Z = v, A = f(v). Rows of 16 or more vectorize along the row; narrower
     * matrices are walked flat, in chunks of a whole number of rows against the bias tiled to
     * the chunk's length, so that they vectorize too. */
    REAL tiled[FP_TILE];
    const ptrdiff_t reps = n_out < 16 ? FP_TILE / n_out : 0, L = reps * n_out;
    /* no % in the loop (integer division is slow), and no row copies (the compiler makes them
     * `rep movs`, whose start-up costs more than a row of a narrow layer) */
    for (ptrdiff_t t = 0, j = 0; t < L; t++) {
        tiled[t] = b[j];
        j = j + 1 == n_out ? 0 : j + 1;
    }
/* The pass, reading v from SRC and writing it to Z unless Z is A (a hidden layer keeps only
 * f(v), and the loop then names A alone): a loop that reads Z and stores to A is vectorized only
 * behind a check that they do not overlap, which the same array fails, so that it ran one
 * element at a time. */
#define FP_BIAS_ACT_PASS(SRC, STORE_Z, EXPR)                                                            \
    if (L == 0) {                                                                                   \
        FP_MAYBE_PARALLEL(n, for (ptrdiff_t r = 0; r < n_samples; r++) {                           \
            REAL *z = SRC + r * n_out;                                                              \
            REAL *a_ = A + r * n_out;                                                               \
            for (ptrdiff_t j = 0; j < n_out; j++) {                                                 \
                const REAL v = z[j] + b[j];                                                         \
                STORE_Z(z[j] = v);                                                                  \
                a_[j] = (EXPR);                                                                     \
            }                                                                                       \
        })                                                                                          \
    } else {                                                                                        \
        ptrdiff_t i = 0;                                                                            \
        for (; i + L <= n; i += L)                                                                  \
            for (ptrdiff_t t = 0; t < L; t++) {                                                     \
                const REAL v = SRC[i + t] + tiled[t];                                               \
                STORE_Z(Z[i + t] = v);                                                              \
                A[i + t] = (EXPR);                                                                  \
            }                                                                                       \
        for (ptrdiff_t t = 0; i < n; i++, t++) { /* i is a whole number of rows: t % n_out */       \
            const REAL v = SRC[i] + tiled[t];                                                       \
            STORE_Z(Z[i] = v);                                                                      \
            A[i] = (EXPR);                                                                          \
        }                                                                                           \
    }
#define FP_STORE(S) S
#define FP_SKIP(S)
#define FP_BIAS_ACT(EXPR)                                                                          \
    if (Z == A) {                                                                                   \
        FP_BIAS_ACT_PASS(A, FP_SKIP, EXPR)                                                          \
    } else {                                                                                        \
        FP_BIAS_ACT_PASS(Z, FP_STORE, EXPR)                                                         \
    }
    switch (activation) {
#define FP_CASE(CODE, F, DF, NEEDS_Z)                                                              \
    case CODE:                                                                                      \
        FP_BIAS_ACT(F)                                                                              \
        break;
        FP_ACTIVATIONS(FP_CASE)
#undef FP_CASE
    case FP_IDENTITY:
        FP_BIAS_ACT(v)
        break;
    case FP_SOFTMAX:
        FP_BIAS_ACT(v)
        FP_NAME(fp_softmax_rows)(A, n_samples, n_out);
        break;
    default:
        return FP_ERR_CODE;
    }
#undef FP_BIAS_ACT
#undef FP_BIAS_ACT_PASS
#undef FP_STORE
#undef FP_SKIP
    return FP_OK;
}

/* The loads of the derivative pass: v = Z[i] only for a row that reads it. */
#define FP_LOAD_V_1 const REAL v = Z[i];
#define FP_LOAD_V_0
#define FP_NEED_Z_1                                                                                 \
    if (Z == NULL)                                                                                  \
        return FP_ERR_NULL;
#define FP_NEED_Z_0

FP_MULTIVERSION static int FP_NAME(fp_activation_backward)(REAL *dA, const REAL *A, const REAL *Z,
                                                           ptrdiff_t n, int activation, REAL param)
{
    /* dA = dL/du in place. Identity leaves dA as it is; softmax's derivative has no pass of its
     * own (the cross-entropy's kernel takes it from the logits): an error here. */
    (void)param;
    switch (activation) {
#define FP_CASE(CODE, F, DF, NEEDS_Z)                                                              \
    case CODE:                                                                                      \
        FP_NEED_Z_##NEEDS_Z                                                                         \
        FP_MAYBE_PARALLEL(n, for (ptrdiff_t i = 0; i < n; i++) {                                   \
            const REAL a = A[i], d = dA[i];                                                         \
            FP_LOAD_V_##NEEDS_Z                                                                     \
            (void)a;                                                                                \
            dA[i] = (DF);                                                                           \
        })                                                                                          \
        return FP_OK;
        FP_ACTIVATIONS(FP_CASE)
#undef FP_CASE
    case FP_IDENTITY:
        return FP_OK;
    default:
        return FP_ERR_CODE;
    }
}
#undef FP_LOAD_V_1
#undef FP_LOAD_V_0
#undef FP_NEED_Z_1
#undef FP_NEED_Z_0

FP_MULTIVERSION static void FP_NAME(fp_column_sum)(const REAL *dZ, ptrdiff_t n_samples,
                                                   ptrdiff_t n_out, REAL *db, int accumulate)
{
    if (!accumulate)
        for (ptrdiff_t j = 0; j < n_out; j++)
            db[j] = 0;
    if (n_out <= 0)
        return;
    if (n_out < 16) {
        /* narrow: sum whole-row chunks flat into a tiled accumulator, then fold its lanes */
        const ptrdiff_t reps = FP_TILE / n_out, L = reps * n_out, n = n_samples * n_out;
        REAL acc[FP_TILE] = {0};
        ptrdiff_t i = 0;
        for (; i + L <= n; i += L)
            for (ptrdiff_t t = 0; t < L; t++)
                acc[t] += dZ[i + t];
        for (ptrdiff_t t = 0; i < n; i++, t++)
            acc[t] += dZ[i];
        for (ptrdiff_t r = 0; r < reps; r++)
            for (ptrdiff_t j = 0; j < n_out; j++)
                db[j] += acc[r * n_out + j];
        return;
    }
    for (ptrdiff_t i = 0; i < n_samples; i++) {
        const REAL *d = dZ + i * n_out;
        for (ptrdiff_t j = 0; j < n_out; j++)
            db[j] += d[j];
    }
}

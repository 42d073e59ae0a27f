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

#define FP_ACTIVATIONS(X)                                                                          \
    X(FP_SIGMOID, (REAL)1 / ((REAL)1 + FP_NAME(fp_exp)(-v)), d * (a * ((REAL)1 - a)), 0)        \
    X(FP_TANH, FP_NAME(fp_tanh)(v), d * ((REAL)1 - a * a), 0)                                     \
    X(FP_RELU, v > 0 ? v : (REAL)0, a > 0 ? d : (REAL)0, 0)                                       \
    X(FP_LEAKY_RELU, v > 0 ? v : param * v, a > 0 ? d : param * d, 0)                             \
    X(FP_GELU, FP_NAME(fp_gelu)(v), FP_NAME(fp_gelu_grad)(d, v), 1)                               \
    X(FP_GELU_TANH, FP_NAME(fp_gelu_tanh)(v), FP_NAME(fp_gelu_tanh_grad)(d, v), 1)                \
    X(FP_SILU, v / ((REAL)1 + FP_NAME(fp_exp)(-v)), FP_NAME(fp_silu_grad)(d, v), 1)              \
    X(FP_ELU, v > 0 ? v : param * FP_NAME(fp_expm1)(v), v > 0 ? d : d * (param * FP_NAME(fp_exp)(v)), 1) \
    X(FP_SOFTPLUS, FP_NAME(fp_softplus)(v), FP_NAME(fp_softplus_grad)(d, v), 1)

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

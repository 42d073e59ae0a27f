/* The activations, forward and derivative side by side: one row of FP_ACTIVATIONS per function,
 * giving f(v) of the pre-activation v, and dL/du from d = dL/da and the output a = f(v) (the
 * derivative written through a, as the seeds' sigmoid_derivative(x) = x (1 - x)). Adding an
 * activation is one row here, its code in fastprop.h and its name in fastprop/activations.py.
 * Identity (f = v, f' = 1) and softmax (row-wise, its derivative fused with the cross-entropy
 * in losses.h) are the two that need no row. Included once per dtype by kernels.c. */

#define FP_ACTIVATIONS(X)                                                                          \
    X(FP_SIGMOID, (REAL)1 / ((REAL)1 + FP_NAME(fp_exp)(-v)), d * (a * ((REAL)1 - a)))            \
    X(FP_TANH, FP_NAME(fp_tanh)(v), d * ((REAL)1 - a * a))                                                      \
    X(FP_RELU, v > 0 ? v : (REAL)0, a > 0 ? d : (REAL)0)                                            \
    X(FP_LEAKY_RELU, v > 0 ? v : negative_slope * v, a > 0 ? d : negative_slope * d)

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

FP_MULTIVERSION static void FP_NAME(fp_bias_activation)(REAL *Z, REAL *A, const REAL *b,
                                                        ptrdiff_t n_samples, ptrdiff_t n_out,
                                                        int activation, REAL negative_slope)
{
    const ptrdiff_t n = n_samples * n_out;
    if (n <= 0)
        return;
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
#define FP_CASE(CODE, F, DF)                                                                       \
    case CODE:                                                                                      \
        FP_BIAS_ACT(F)                                                                              \
        break;
        FP_ACTIVATIONS(FP_CASE)
#undef FP_CASE
    case FP_SOFTMAX:
        FP_BIAS_ACT(v)
        FP_NAME(fp_softmax_rows)(A, n_samples, n_out);
        break;
    default: /* identity */
        FP_BIAS_ACT(v)
        break;
    }
#undef FP_BIAS_ACT
#undef FP_BIAS_ACT_PASS
#undef FP_STORE
#undef FP_SKIP
}

FP_MULTIVERSION static void FP_NAME(fp_activation_backward)(REAL *dA, const REAL *A, ptrdiff_t n,
                                                            int activation, REAL negative_slope)
{
    /* dA = dL/du in place. Identity (and softmax, whose derivative the loss kernel fuses) leave
     * dA as it is. */
    switch (activation) {
#define FP_CASE(CODE, F, DF)                                                                       \
    case CODE:                                                                                      \
        FP_MAYBE_PARALLEL(n, for (ptrdiff_t i = 0; i < n; i++) {                                   \
            const REAL a = A[i], d = dA[i];                                                         \
            dA[i] = (DF);                                                                           \
        })                                                                                          \
        break;
        FP_ACTIVATIONS(FP_CASE)
#undef FP_CASE
    default:
        break;
    }
}

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

/* One body for every element-wise kernel, included once per dtype by elementwise.c with
 * REAL (float or double) and SFX (f32 or f64) defined. <tgmath.h> makes exp/log/tanh pick the
 * float or double routine from REAL, so the body never names a dtype. */

/* Narrow matrices are walked in chunks of a whole number of rows, up to this many elements. */
#ifndef FP_TILE
#define FP_TILE 64
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

/* exp(x) in a form the compiler vectorizes: x = n ln2 + r with |r| <= ln2 / 2 (Cody-Waite),
 * exp(r) by its Taylor polynomial (within two units in the last place), and 2^n added to the
 * exponent bits. Above FP_EXP_MAX the result is inf, below FP_EXP_MIN (where it would be
 * denormal) it is 0, as with flush-to-zero; NaN stays NaN. */
static inline REAL FP_NAME(fp_exp)(REAL x)
{
    REAL c = x > FP_EXP_MAX ? FP_EXP_MAX : x;
    c = c < FP_EXP_MIN ? FP_EXP_MIN : c;
    const REAL t = c * (REAL)1.44269504088896340736 + FP_ROUND_MAGIC; /* rounds c / ln2 */
    const REAL n = t - FP_ROUND_MAGIC;
    REAL r = c - n * (REAL)FP_LN2_HI;
    r = r - n * (REAL)FP_LN2_LO;
    REAL p = (REAL)FP_EXP_C[FP_EXP_DEGREE];
#pragma GCC unroll 16
    for (int k = FP_EXP_DEGREE - 1; k >= 0; k--)
        p = p * r + (REAL)FP_EXP_C[k];
    FP_UINT bt, bp;
    memcpy(&bt, &t, sizeof bt);
    memcpy(&bp, &p, sizeof bp);
    bp += (bt - FP_ROUND_MAGIC_BITS) << FP_MANT_BITS; /* the low bits of t hold n */
    memcpy(&p, &bp, sizeof p);
    p = x > FP_EXP_MAX ? (REAL)INFINITY : p;
    p = x < FP_EXP_MIN ? (REAL)0 : p;
    return x != x ? x : p;
}

/* log(1 + x) for x in [0, 1], vectorizable: 2 atanh(s) with s = x / (2 + x) in [0, 1/3]. */
static inline REAL FP_NAME(fp_log1p01)(REAL x)
{
    const REAL s = x / ((REAL)2 + x);
    const REAL z = s * s;
    REAL p = (REAL)1 / (REAL)(2 * FP_LOG1P_TERMS + 1);
#pragma GCC unroll 20
    for (int k = FP_LOG1P_TERMS - 1; k >= 0; k--)
        p = p * z + (REAL)1 / (REAL)(2 * k + 1);
    return (REAL)2 * s * p;
}

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

FP_MULTIVERSION void FP_NAME(fp_bias_activation)(REAL *Z, REAL *A, const REAL *b, ptrdiff_t n_samples,
                                 ptrdiff_t n_out, int activation, REAL negative_slope)
{
    const ptrdiff_t n = n_samples * n_out;
    /* One pass: v = Z + b, Z = v, A = f(v). Rows of 16 or more vectorize along the row; narrower
     * matrices are walked flat, in chunks of a whole number of rows against the bias tiled to
     * the chunk's length, so that they vectorize too. */
    REAL tiled[FP_TILE];
    const ptrdiff_t reps = n_out < 16 ? FP_TILE / n_out : 0, L = reps * n_out;
    for (ptrdiff_t r = 0; r < reps; r++) /* no % in the loop: integer division is slow */
        for (ptrdiff_t j = 0; j < n_out; j++)
            tiled[r * n_out + j] = b[j];
#define FP_BIAS_ACT(EXPR)                                                                          \
    if (L == 0) {                                                                                   \
        FP_MAYBE_PARALLEL(n, for (ptrdiff_t r = 0; r < n_samples; r++) {                           \
            REAL *z = Z + r * n_out;                                                                \
            REAL *a = A + r * n_out;                                                                \
            for (ptrdiff_t j = 0; j < n_out; j++) {                                                 \
                const REAL v = z[j] + b[j];                                                         \
                z[j] = v;                                                                           \
                a[j] = (EXPR);                                                                      \
            }                                                                                       \
        })                                                                                          \
    } else {                                                                                        \
        ptrdiff_t i = 0;                                                                            \
        for (; i + L <= n; i += L)                                                                  \
            for (ptrdiff_t t = 0; t < L; t++) {                                                     \
                const REAL v = Z[i + t] + tiled[t];                                                 \
                Z[i + t] = v;                                                                       \
                A[i + t] = (EXPR);                                                                  \
            }                                                                                       \
        for (ptrdiff_t t = 0; i < n; i++, t++) { /* i is a whole number of rows: t % n_out */       \
            const REAL v = Z[i] + tiled[t];                                                         \
            Z[i] = v;                                                                               \
            A[i] = (EXPR);                                                                          \
        }                                                                                           \
    }
    switch (activation) {
    case FP_SIGMOID:
        FP_BIAS_ACT((REAL)1 / ((REAL)1 + FP_NAME(fp_exp)(-v)))
        break;
    case FP_TANH:
        FP_BIAS_ACT(tanh(v))
        break;
    case FP_RELU:
        FP_BIAS_ACT(v > 0 ? v : (REAL)0)
        break;
    case FP_LEAKY_RELU:
        FP_BIAS_ACT(v > 0 ? v : negative_slope * v)
        break;
    case FP_SOFTMAX:
        FP_BIAS_ACT(v)
        FP_NAME(fp_softmax_rows)(A, n_samples, n_out);
        break;
    default:
        FP_BIAS_ACT(v)
        break;
    }
#undef FP_BIAS_ACT
}

FP_MULTIVERSION void FP_NAME(fp_activation_backward)(REAL *dA, const REAL *A, ptrdiff_t n, int activation,
                                     REAL negative_slope)
{
    /* f'(z) through a = f(z): sigmoid a(1 - a), tanh 1 - a^2, relu [a > 0], leaky relu 1 or the
     * slope (a > 0 exactly when z > 0 for a slope >= 0). Identity (and softmax, whose derivative
     * the loss kernel fuses) leave dA as it is. */
#define FP_LOOP(EXPR)                                                                              \
    FP_MAYBE_PARALLEL(n, for (ptrdiff_t i = 0; i < n; i++) {                                       \
        const REAL a = A[i], d = dA[i];                                                             \
        dA[i] = (EXPR);                                                                             \
    })
    switch (activation) {
    case FP_SIGMOID:
        FP_LOOP(d * (a * ((REAL)1 - a)))
        break;
    case FP_TANH:
        FP_LOOP(d * ((REAL)1 - a * a))
        break;
    case FP_RELU:
        FP_LOOP(a > 0 ? d : (REAL)0)
        break;
    case FP_LEAKY_RELU:
        FP_LOOP(a > 0 ? d : negative_slope * d)
        break;
    default:
        break;
    }
#undef FP_LOOP
}

FP_MULTIVERSION void FP_NAME(fp_column_sum)(const REAL *dZ, ptrdiff_t n_samples, ptrdiff_t n_out, REAL *db,
                            int accumulate)
{
    if (!accumulate)
        for (ptrdiff_t j = 0; j < n_out; j++)
            db[j] = 0;
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

FP_MULTIVERSION double FP_NAME(fp_squared_error)(const REAL *A, const REAL *Y, ptrdiff_t n, REAL *dA, REAL scale)
{
    double total = 0;
    if (dA)
        for (ptrdiff_t i = 0; i < n; i++)
            dA[i] = scale * (A[i] - Y[i]);
#define FP_SQ(i) ((A[i] - Y[i]) * (A[i] - Y[i]))
    FP_LANE_SUM(total, n, FP_SQ);
#undef FP_SQ
    return total;
}

FP_MULTIVERSION double FP_NAME(fp_abs_error)(const REAL *A, const REAL *Y, ptrdiff_t n, REAL *dA,
                                             REAL scale)
{
    double total = 0;
    if (dA)
        for (ptrdiff_t i = 0; i < n; i++) {
            const REAL r = A[i] - Y[i];
            dA[i] = r > 0 ? scale : (r < 0 ? -scale : (REAL)0);
        }
#define FP_ABS(i) fabs(A[i] - Y[i])
    FP_LANE_SUM(total, n, FP_ABS);
#undef FP_ABS
    return total;
}

FP_MULTIVERSION double FP_NAME(fp_huber)(const REAL *A, const REAL *Y, ptrdiff_t n, REAL *dA,
                                         REAL scale)
{
    double total = 0;
    if (dA)
        for (ptrdiff_t i = 0; i < n; i++) {
            const REAL r = A[i] - Y[i];
            dA[i] = scale * (r > 1 ? (REAL)1 : (r < -1 ? (REAL)-1 : r));
        }
#define FP_HUBER(i)                                                                                \
    (fabs(A[i] - Y[i]) <= 1 ? (REAL)0.5 * (A[i] - Y[i]) * (A[i] - Y[i])                             \
                            : fabs(A[i] - Y[i]) - (REAL)0.5)
    FP_LANE_SUM(total, n, FP_HUBER);
#undef FP_HUBER
    return total;
}

FP_MULTIVERSION double FP_NAME(fp_bce_logits)(const REAL *Z, const REAL *Y, ptrdiff_t n, REAL *dZ, REAL scale,
                              int64_t *n_correct)
{
    /* loss = max(z, 0) - z y + log(1 + exp(-|z|)); sigmoid from the same e = exp(-|z|), so
     * neither overflows at any finite z. The gradient, the loss and the count are separate
     * loops so that each vectorizes. */
    double total = 0;
    int64_t correct = 0;
    if (dZ) {
        /* e = exp(-|z|) once, parked in dZ, read by the loss and then turned into the gradient */
        for (ptrdiff_t i = 0; i < n; i++)
            dZ[i] = FP_NAME(fp_exp)(-fabs(Z[i]));
#define FP_BCE(i) ((Z[i] > 0 ? Z[i] : (REAL)0) - Z[i] * Y[i] + FP_NAME(fp_log1p01)(dZ[i]))
        FP_LANE_SUM(total, n, FP_BCE);
#undef FP_BCE
        for (ptrdiff_t i = 0; i < n; i++) {
            const REAL e = dZ[i];
            const REAL p = (Z[i] >= 0 ? (REAL)1 : e) / ((REAL)1 + e);
            dZ[i] = scale * (p - Y[i]);
        }
    } else {
#define FP_BCE(i) ((Z[i] > 0 ? Z[i] : (REAL)0) - Z[i] * Y[i] +                                    \
                   FP_NAME(fp_log1p01)(FP_NAME(fp_exp)(-fabs(Z[i]))))
        FP_LANE_SUM(total, n, FP_BCE);
#undef FP_BCE
    }
    for (ptrdiff_t i = 0; i < n; i++)
        correct += (Z[i] > 0) == (Y[i] > (REAL)0.5);
    if (n_correct)
        *n_correct += correct;
    return total;
}

/* Row i of a softmax cross-entropy: returns log-sum-exp of z; if dZ, stores exp(z - max) in d
 * and returns the sum of those in *s. */
static inline REAL FP_NAME(fp_row_logsumexp)(const REAL *z, ptrdiff_t k, REAL *d, REAL *s_out,
                                             ptrdiff_t *argmax)
{
    REAL m = z[0];
    ptrdiff_t am = 0;
    for (ptrdiff_t j = 1; j < k; j++)
        if (z[j] > m) {
            m = z[j];
            am = j;
        }
    REAL s = 0;
    if (d) {
        for (ptrdiff_t j = 0; j < k; j++) {
            d[j] = FP_NAME(fp_exp)(z[j] - m);
            s += d[j];
        }
    } else {
        for (ptrdiff_t j = 0; j < k; j++)
            s += FP_NAME(fp_exp)(z[j] - m);
    }
    *s_out = s;
    *argmax = am;
    return m + log(s);
}

FP_MULTIVERSION double FP_NAME(fp_softmax_xent)(const REAL *Z, const REAL *Y, ptrdiff_t n_samples,
                                ptrdiff_t n_classes, REAL *dZ, REAL scale, int64_t *n_correct)
{
    double total = 0;
    int64_t correct = 0;
    for (ptrdiff_t i = 0; i < n_samples; i++) {
        const REAL *z = Z + i * n_classes, *y = Y + i * n_classes;
        REAL *d = dZ ? dZ + i * n_classes : NULL;
        REAL s;
        ptrdiff_t am;
        REAL lse = FP_NAME(fp_row_logsumexp)(z, n_classes, d, &s, &am);
        REAL y_sum = 0, row = 0;
        ptrdiff_t y_am = 0;
        for (ptrdiff_t j = 0; j < n_classes; j++) {
            y_sum += y[j];
            row += y[j] * (lse - z[j]);
            if (y[j] > y[y_am])
                y_am = j;
        }
        total += (double)row;
        correct += am == y_am;
        if (d) {
            REAL c = y_sum / s;
            for (ptrdiff_t j = 0; j < n_classes; j++)
                d[j] = scale * (d[j] * c - y[j]);
        }
    }
    if (n_correct)
        *n_correct += correct;
    return total;
}

FP_MULTIVERSION double FP_NAME(fp_softmax_xent_labels)(const REAL *Z, const int64_t *labels, ptrdiff_t n_samples,
                                       ptrdiff_t n_classes, REAL *dZ, REAL scale,
                                       int64_t *n_correct)
{
    double total = 0;
    int64_t correct = 0;
    for (ptrdiff_t i = 0; i < n_samples; i++) {
        const REAL *z = Z + i * n_classes;
        REAL *d = dZ ? dZ + i * n_classes : NULL;
        const int64_t label = labels[i];
        REAL s;
        ptrdiff_t am;
        REAL lse = FP_NAME(fp_row_logsumexp)(z, n_classes, d, &s, &am);
        total += (double)(lse - z[label]);
        correct += am == label;
        if (d) {
            REAL c = (REAL)1 / s;
            for (ptrdiff_t j = 0; j < n_classes; j++)
                d[j] = scale * d[j] * c;
            d[label] -= scale;
        }
    }
    if (n_correct)
        *n_correct += correct;
    return total;
}

FP_MULTIVERSION void FP_NAME(fp_sgd_update)(REAL *params, const REAL *grads, ptrdiff_t n, REAL lr)
{
    for (ptrdiff_t i = 0; i < n; i++)
        params[i] -= lr * grads[i];
}

FP_MULTIVERSION void FP_NAME(fp_optimizer_step)(const fp_optimizer *opt, REAL *p, REAL *g, REAL *s1,
                                               REAL *s2, ptrdiff_t n, int64_t t)
{
    /* The update formulas of torch.optim (SGD, Adam, AdamW, RMSprop), one fused pass each. */
    if (opt->max_norm > 0) { /* clip by the global L2 norm, as torch.nn.utils.clip_grad_norm_ */
        double sq = 0;
#define FP_SQ(i) (g[i] * g[i])
        FP_LANE_SUM(sq, n, FP_SQ);
#undef FP_SQ
        const double coef = opt->max_norm / (sqrt(sq) + 1e-6);
        if (coef < 1) {
            const REAL c = (REAL)coef;
            for (ptrdiff_t i = 0; i < n; i++)
                g[i] *= c;
        }
    }
    const REAL lr = (REAL)opt->lr, wd = (REAL)opt->weight_decay, mu = (REAL)opt->momentum;
    const REAL eps = (REAL)opt->eps;
    switch (opt->kind) {
    case FP_OPT_MOMENTUM: /* buf = mu buf + g (buf starts at 0, so the first step is g) */
        if (opt->nesterov)
            for (ptrdiff_t i = 0; i < n; i++) {
                const REAL gi = g[i] + wd * p[i];
                const REAL b = mu * s1[i] + gi;
                s1[i] = b;
                p[i] -= lr * (gi + mu * b);
            }
        else
            for (ptrdiff_t i = 0; i < n; i++) {
                const REAL b = mu * s1[i] + (g[i] + wd * p[i]);
                s1[i] = b;
                p[i] -= lr * b;
            }
        break;
    case FP_OPT_ADAM:
    case FP_OPT_ADAMW: {
        const REAL b1 = (REAL)opt->beta1, b2 = (REAL)opt->beta2;
        const REAL bc1 = (REAL)(1 - pow(opt->beta1, (double)t));
        const REAL sqrt_bc2 = (REAL)sqrt(1 - pow(opt->beta2, (double)t));
        const REAL step = lr / bc1;
        const REAL l2 = opt->kind == FP_OPT_ADAM ? wd : (REAL)0;
        const REAL decay = opt->kind == FP_OPT_ADAMW ? (REAL)1 - lr * wd : (REAL)1;
        for (ptrdiff_t i = 0; i < n; i++) {
            const REAL gi = g[i] + l2 * p[i];
            const REAL m = b1 * s1[i] + ((REAL)1 - b1) * gi;
            const REAL v = b2 * s2[i] + ((REAL)1 - b2) * gi * gi;
            s1[i] = m;
            s2[i] = v;
            p[i] = p[i] * decay - step * m / (sqrt(v) / sqrt_bc2 + eps);
        }
        break;
    }
    case FP_OPT_RMSPROP: {
        const REAL a = (REAL)opt->alpha;
        for (ptrdiff_t i = 0; i < n; i++) {
            const REAL gi = g[i] + wd * p[i];
            const REAL v = a * s1[i] + ((REAL)1 - a) * gi * gi;
            s1[i] = v;
            p[i] -= lr * gi / (sqrt(v) + eps);
        }
        break;
    }
    default:
        for (ptrdiff_t i = 0; i < n; i++)
            p[i] -= lr * (g[i] + wd * p[i]);
        break;
    }
}

FP_MULTIVERSION void FP_NAME(fp_dropout)(const REAL *A, REAL *M, REAL *D, ptrdiff_t n, uint64_t key,
                                        REAL rate)
{
    /* A counter-based generator (splitmix64 of key + i): the same mask for the same key,
     * whatever the threads, and a loop the compiler vectorizes. 24 bits make the uniform draw. */
    const REAL keep = (REAL)1 / ((REAL)1 - rate);
    const uint64_t threshold = (uint64_t)((double)rate * 16777216.0);
    for (ptrdiff_t i = 0; i < n; i++) {
        uint64_t z = key + (uint64_t)i * 0x9E3779B97F4A7C15ull;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        const REAL m = (z >> 40) >= threshold ? keep : (REAL)0;
        M[i] = m;
        D[i] = A[i] * m;
    }
}

FP_MULTIVERSION void FP_NAME(fp_mul)(REAL *x, const REAL *m, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i++)
        x[i] *= m[i];
}

#undef FP_NAME
#undef FP_CAT
#undef FP_CAT_

/* One body for every element-wise kernel, included once per dtype by elementwise.c with
 * REAL (float or double) and SFX (f32 or f64) defined. <tgmath.h> makes exp/log/tanh pick the
 * float or double routine from REAL, so the body never names a dtype. */

#define FP_CAT_(a, b) a##_##b
#define FP_CAT(a, b) FP_CAT_(a, b)
#define FP_NAME(name) FP_CAT(name, SFX)

/* Element-wise loops over at least this many values use OpenMP threads; below it the thread
 * start-up costs more than it saves. */
#ifndef FP_OMP_MIN_ELEMENTS
#define FP_OMP_MIN_ELEMENTS 65536
#endif

static void FP_NAME(fp_softmax_rows)(REAL *A, ptrdiff_t n_samples, ptrdiff_t n_out)
{
    for (ptrdiff_t i = 0; i < n_samples; i++) {
        REAL *a = A + i * n_out;
        REAL m = a[0];
        for (ptrdiff_t j = 1; j < n_out; j++)
            m = a[j] > m ? a[j] : m;
        REAL s = 0;
        for (ptrdiff_t j = 0; j < n_out; j++) {
            a[j] = exp(a[j] - m);
            s += a[j];
        }
        REAL inv = (REAL)1 / s;
        for (ptrdiff_t j = 0; j < n_out; j++)
            a[j] *= inv;
    }
}

void FP_NAME(fp_bias_activation)(REAL *Z, REAL *A, const REAL *b, ptrdiff_t n_samples,
                                 ptrdiff_t n_out, int activation, REAL negative_slope)
{
    const ptrdiff_t n_total = n_samples * n_out;
    /* Each activation gets its own loop so that the compiler can vectorize it. */
#define FP_ROWS_LOOP(EXPR)                                                                         \
    _Pragma("omp parallel for schedule(static) if (n_total >= FP_OMP_MIN_ELEMENTS)")              \
    for (ptrdiff_t i = 0; i < n_samples; i++) {                                                     \
        REAL *z = Z + i * n_out;                                                                    \
        REAL *a = A + i * n_out;                                                                    \
        for (ptrdiff_t j = 0; j < n_out; j++) {                                                     \
            REAL v = z[j] + b[j];                                                                   \
            z[j] = v;                                                                               \
            a[j] = (EXPR);                                                                          \
        }                                                                                           \
    }
    switch (activation) {
    case FP_SIGMOID:
        FP_ROWS_LOOP((REAL)1 / ((REAL)1 + exp(-v)))
        break;
    case FP_TANH:
        FP_ROWS_LOOP(tanh(v))
        break;
    case FP_RELU:
        FP_ROWS_LOOP(v > 0 ? v : (REAL)0)
        break;
    case FP_LEAKY_RELU:
        FP_ROWS_LOOP(v > 0 ? v : negative_slope * v)
        break;
    case FP_SOFTMAX:
        FP_ROWS_LOOP(v)
        FP_NAME(fp_softmax_rows)(A, n_samples, n_out);
        break;
    default:
        FP_ROWS_LOOP(v)
        break;
    }
#undef FP_ROWS_LOOP
    (void)n_total;
}

void FP_NAME(fp_activation_backward)(REAL *dA, const REAL *A, ptrdiff_t n, int activation,
                                     REAL negative_slope)
{
    /* f'(z) through a = f(z): sigmoid a(1 - a), tanh 1 - a^2, relu [a > 0], leaky relu 1 or the
     * slope (a > 0 exactly when z > 0 for a slope >= 0). Identity (and softmax, whose derivative
     * the loss kernel fuses) leave dA as it is. */
#define FP_LOOP(EXPR)                                                                              \
    _Pragma("omp parallel for schedule(static) if (n >= FP_OMP_MIN_ELEMENTS)")                    \
    for (ptrdiff_t i = 0; i < n; i++) {                                                             \
        REAL a = A[i];                                                                              \
        dA[i] *= (EXPR);                                                                            \
    }
    switch (activation) {
    case FP_SIGMOID:
        FP_LOOP(a * ((REAL)1 - a))
        break;
    case FP_TANH:
        FP_LOOP((REAL)1 - a * a)
        break;
    case FP_RELU:
        FP_LOOP(a > 0 ? (REAL)1 : (REAL)0)
        break;
    case FP_LEAKY_RELU:
        FP_LOOP(a > 0 ? (REAL)1 : negative_slope)
        break;
    default:
        break;
    }
#undef FP_LOOP
}

void FP_NAME(fp_column_sum)(const REAL *dZ, ptrdiff_t n_samples, ptrdiff_t n_out, REAL *db,
                            int accumulate)
{
    if (!accumulate)
        for (ptrdiff_t j = 0; j < n_out; j++)
            db[j] = 0;
    for (ptrdiff_t i = 0; i < n_samples; i++) {
        const REAL *d = dZ + i * n_out;
        for (ptrdiff_t j = 0; j < n_out; j++)
            db[j] += d[j];
    }
}

double FP_NAME(fp_squared_error)(const REAL *A, const REAL *Y, ptrdiff_t n, REAL *dA, REAL scale)
{
    double total = 0;
    for (ptrdiff_t i = 0; i < n; i++) {
        REAL r = A[i] - Y[i];
        total += (double)r * (double)r;
        if (dA)
            dA[i] = scale * r;
    }
    return total;
}

double FP_NAME(fp_bce_logits)(const REAL *Z, const REAL *Y, ptrdiff_t n, REAL *dZ, REAL scale,
                              int64_t *n_correct)
{
    /* loss = max(z, 0) - z y + log(1 + exp(-|z|)); sigmoid from the same e = exp(-|z|), so
     * neither overflows at any finite z. */
    double total = 0;
    int64_t correct = 0;
    for (ptrdiff_t i = 0; i < n; i++) {
        REAL z = Z[i], y = Y[i];
        REAL e = exp(-fabs(z));
        total += (double)((z > 0 ? z : (REAL)0) - z * y + log1p(e));
        if (dZ) {
            REAL p = z >= 0 ? (REAL)1 / ((REAL)1 + e) : e / ((REAL)1 + e);
            dZ[i] = scale * (p - y);
        }
        correct += (z > 0) == (y > (REAL)0.5);
    }
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
            d[j] = exp(z[j] - m);
            s += d[j];
        }
    } else {
        for (ptrdiff_t j = 0; j < k; j++)
            s += exp(z[j] - m);
    }
    *s_out = s;
    *argmax = am;
    return m + log(s);
}

double FP_NAME(fp_softmax_xent)(const REAL *Z, const REAL *Y, ptrdiff_t n_samples,
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

double FP_NAME(fp_softmax_xent_labels)(const REAL *Z, const int64_t *labels, ptrdiff_t n_samples,
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

void FP_NAME(fp_sgd_update)(REAL *params, const REAL *grads, ptrdiff_t n, REAL lr)
{
    for (ptrdiff_t i = 0; i < n; i++)
        params[i] -= lr * grads[i];
}

#undef FP_NAME
#undef FP_CAT
#undef FP_CAT_

/* The losses of the output layer: each returns a sum over the batch and writes its gradient
 * (scaled to the mean) unless the gradient pointer is NULL; fp_loss_gradient divides into the
 * mean and takes the gradient through the output activation. Sigmoid and softmax outputs are fused
 * with their cross-entropies: the gradient is taken from the logits. Included once per dtype by
 * kernels.c. */

/* Squared error: returns sum (A - Y)^2; dA = scale * (A - Y). */
FP_MULTIVERSION static double FP_NAME(fp_squared_error)(const REAL *A, const REAL *Y, ptrdiff_t n,
                                                        REAL *dA, REAL scale)
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

/* Absolute error: returns sum |A - Y|; dA = scale * sign(A - Y). */
FP_MULTIVERSION static double FP_NAME(fp_abs_error)(const REAL *A, const REAL *Y, ptrdiff_t n,
                                                    REAL *dA, REAL scale)
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

/* Huber with delta 1: returns the sum of 1/2 r^2 (|r| <= 1) or |r| - 1/2; dA = scale * clip(r). */
FP_MULTIVERSION static double FP_NAME(fp_huber)(const REAL *A, const REAL *Y, ptrdiff_t n, REAL *dA,
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

/* Binary cross-entropy from logits Z: returns the sum over elements; dZ = scale * (sigmoid(Z) - Y);
 * *n_correct counts elements with (Z > 0) == (Y > 0.5). */
FP_MULTIVERSION static double FP_NAME(fp_bce_logits)(const REAL *Z, const REAL *Y, ptrdiff_t n,
                                                     REAL *dZ, REAL scale, int64_t *n_correct)
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

/* Row i of a softmax cross-entropy: returns log-sum-exp of z; if d, stores exp(z - max) in d;
 * the sum of those in *s_out and the row's argmax in *argmax. */
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

/* Softmax cross-entropy from logits Z (n_samples, n_classes) against target rows Y: returns the
 * sum over rows of -sum_k Y_k log softmax(Z)_k; dZ = scale * (softmax(Z) * sum(Y) - Y). */
FP_MULTIVERSION static double FP_NAME(fp_softmax_xent)(const REAL *Z, const REAL *Y,
                                                       ptrdiff_t n_samples, ptrdiff_t n_classes,
                                                       REAL *dZ, REAL scale, int64_t *n_correct)
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

/* The same against integer labels (0 <= label < n_classes). */
FP_MULTIVERSION static double FP_NAME(fp_softmax_xent_labels)(const REAL *Z, const int64_t *labels,
                                                              ptrdiff_t n_samples,
                                                              ptrdiff_t n_classes, REAL *dZ,
                                                              REAL scale, int64_t *n_correct)
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

/* The kernels in the one signature of the table: (Z, A, Y, labels, n_samples, n_out, dZ, scale,
 * n_correct), each reading what it needs. */
/* An element-wise loss of the output A against Y (squared, absolute, Huber), in the table's
 * signature. */
#define FP_ELEMENTWISE_LOSS(NAME, KERNEL)                                                          \
    static double FP_NAME(NAME)(const REAL *Z, const REAL *A, const REAL *Y,                       \
                                const int64_t *labels, ptrdiff_t n_samples, ptrdiff_t n_out,       \
                                REAL *dZ, REAL scale, int64_t *n_correct)                          \
    {                                                                                              \
        (void)Z, (void)labels, (void)n_correct;                                                    \
        return FP_NAME(KERNEL)(A, Y, n_samples * n_out, dZ, scale);                                \
    }
FP_ELEMENTWISE_LOSS(fp_loss_squared, fp_squared_error)
FP_ELEMENTWISE_LOSS(fp_loss_abs, fp_abs_error)
FP_ELEMENTWISE_LOSS(fp_loss_huber, fp_huber)
#undef FP_ELEMENTWISE_LOSS

static double FP_NAME(fp_loss_bce)(const REAL *Z, const REAL *A, const REAL *Y,
                                   const int64_t *labels, ptrdiff_t n_samples, ptrdiff_t n_out,
                                   REAL *dZ, REAL scale, int64_t *n_correct)
{
    (void)A, (void)labels;
    return FP_NAME(fp_bce_logits)(Z, Y, n_samples * n_out, dZ, scale, n_correct);
}

static double FP_NAME(fp_loss_softmax_xent)(const REAL *Z, const REAL *A, const REAL *Y,
                                            const int64_t *labels, ptrdiff_t n_samples,
                                            ptrdiff_t n_out, REAL *dZ, REAL scale,
                                            int64_t *n_correct)
{
    (void)A;
    if (labels)
        return FP_NAME(fp_softmax_xent_labels)(Z, labels, n_samples, n_out, dZ, scale, n_correct);
    return FP_NAME(fp_softmax_xent)(Z, Y, n_samples, n_out, dZ, scale, n_correct);
}

/* One row per loss: X(CODE, KERNEL, DIVISOR, SCALE, FROM_LOGITS, CLASSIFICATION, PER_ELEMENT,
 * OUTPUT_ACTIVATION). The mean loss is the kernel's sum / DIVISOR; its gradient is the kernel's
 * per-element gradient times SCALE (both of n, the number of elements, and n_samples), and, for
 * a loss not FROM_LOGITS, then taken through the output activation's derivative like any other
 * layer's. CLASSIFICATION: it counts correct predictions, PER_ELEMENT: per output element (else
 * per sample). OUTPUT_ACTIVATION: the activation its output must have (the one whose derivative
 * it folds in), or -1 for any element-wise one. */
#define FP_LOSSES(X)                                                                               \
    X(FP_LOSS_MSE, fp_loss_squared, n, 2.0 / n, 0, 0, 0, -1)                                       \
    X(FP_LOSS_HALF_SE, fp_loss_squared, 2.0 * n_samples, 1.0 / n_samples, 0, 0, 0, -1)             \
    X(FP_LOSS_BCE, fp_loss_bce, n, 1.0 / n, 1, 1, 1, FP_SIGMOID)                                   \
    X(FP_LOSS_SOFTMAX_XENT, fp_loss_softmax_xent, n_samples, 1.0 / n_samples, 1, 1, 0, FP_SOFTMAX) \
    X(FP_LOSS_MAE, fp_loss_abs, n, 1.0 / n, 0, 0, 0, -1)                                           \
    X(FP_LOSS_HUBER, fp_loss_huber, n, 1.0 / n, 0, 0, 0, -1)                                       \
    X(FP_LOSS_MULTILABEL_BCE, fp_loss_bce, n_samples, 1.0 / n_samples, 1, 1, 1, FP_SIGMOID)        \
    /* scikit-learn's squared loss: the mean over every element, the gradient of HALF_SE */        \
    X(FP_LOSS_HALF_MSE, fp_loss_squared, 2.0 * n, 1.0 / n_samples, 0, 0, 0, -1)

static int FP_NAME(fp_loss_gradient)(int loss, const REAL *Z, const REAL *A, const REAL *Y,
                                     const int64_t *labels, REAL *dZ, ptrdiff_t n_samples,
                                     ptrdiff_t n_out, int activation, REAL param, double *value,
                                     int64_t *n_correct)
{
    const double n = (double)(n_samples * n_out);
    double total;
    switch (loss) {
#define FP_CASE(CODE, KERNEL, DIVISOR, SCALE, FROM_LOGITS, CLASSIFICATION, PER_ELEMENT, OUTPUT)    \
    case CODE:                                                                                      \
        if ((OUTPUT) >= 0 && activation != (OUTPUT))                                                \
            return FP_ERR_CODE;                                                                     \
        total = FP_NAME(KERNEL)(Z, A, Y, labels, n_samples, n_out, dZ, (REAL)(SCALE), n_correct);  \
        if (!(FROM_LOGITS) && dZ) {                                                                 \
            const int status = FP_NAME(fp_activation_backward)(dZ, A, Z, n_samples * n_out,        \
                                                               activation, param);                  \
            if (status != FP_OK)                                                                    \
                return status;                                                                      \
        }                                                                                           \
        *value = total / (DIVISOR);                                                                 \
        return FP_OK;
        FP_LOSSES(FP_CASE)
#undef FP_CASE
    default:
        return FP_ERR_CODE;
    }
}

/* The same with per-sample weights w (normalized by the caller to sum to n_samples): each row's
 * loss and gradient count w[i] times. Row by row, through the unweighted kernel. */
static int FP_NAME(fp_loss_gradient_weighted)(int loss, const REAL *Z, const REAL *A,
                                              const REAL *Y, const int64_t *labels, const REAL *w,
                                              REAL *dZ, ptrdiff_t n_samples, ptrdiff_t n_out,
                                              int activation, REAL param, double *value,
                                              int64_t *n_correct)
{
    double total = 0, row;
    for (ptrdiff_t i = 0; i < n_samples; i++) {
        const ptrdiff_t at = i * n_out;
        REAL *d = dZ ? dZ + at : NULL;
        const int status = FP_NAME(fp_loss_gradient)(loss, Z + at, A + at, Y ? Y + at : NULL,
                                                     labels ? labels + i : NULL, d, 1, n_out,
                                                     activation, param, &row, n_correct);
        if (status != FP_OK)
            return status;
        total += (double)w[i] * row;
        if (d) {
            const REAL scale = w[i] / (REAL)n_samples;
            for (ptrdiff_t j = 0; j < n_out; j++)
                d[j] *= scale;
        }
    }
    *value = total / (double)n_samples;
    return FP_OK;
}

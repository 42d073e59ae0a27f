/* The optimizers' updates, with torch.optim's formulas (SGD with momentum and Nesterov, Adam,
 * AdamW, RMSprop): one fused pass each over the flat parameter, gradient and state buffers.
 * Included once per dtype by kernels.c. */

/* 1 if every x[i] is finite: a vectorized lane sum is finite exactly when every term is, unless
 * it overflowed, when the element-wise test decides. (What fit checks after each epoch.) */
FP_MULTIVERSION static int FP_NAME(fp_all_finite)(const REAL *x, ptrdiff_t n)
{
    double total = 0;
#define FP_X(i) (x[i])
    FP_LANE_SUM(total, n, FP_X);
#undef FP_X
    if (total - total == 0)
        return 1;
    for (ptrdiff_t i = 0; i < n; i++)
        if (!(x[i] - x[i] == 0))
            return 0;
    return 1;
}

/* The sum of x[i]^2 (the L2 penalty's ||W||^2): lanes of REAL, chunks added in double, in a
 * fixed order; one thread, no BLAS call (its threads would wake for a memory-bound pass). */
FP_MULTIVERSION static double FP_NAME(fp_sum_of_squares)(const REAL *x, ptrdiff_t n)
{
    double total = 0;
#define FP_X2(i) (x[i] * x[i])
    FP_LANE_SUM(total, n, FP_X2);
#undef FP_X2
    return total;
}

/* y = a x, a gradient's first term (the L2 penalty's a W, which the others then add to); returns
 * the sum of x[i]^2 (its loss term), read in the same pass. A large array is cut into
 * FP_SCALE_PARTS parts whatever the threads (shared among them), each part's sum taken in blocks
 * that stay in cache for its second read, the parts' sums added in order: the same bits on any
 * number of threads. */
#ifndef FP_SCALE_PARTS
#define FP_SCALE_PARTS 16
#endif
FP_MULTIVERSION static double FP_NAME(fp_scale)(REAL *restrict y, const REAL *restrict x, REAL a,
                                                ptrdiff_t n)
{
    double part[FP_SCALE_PARTS] = {0};
    const ptrdiff_t blocks = (n + 4095) / 4096;
#pragma omp parallel for schedule(static) if (n >= FP_OMP_MIN_ELEMENTS)
    for (int p = 0; p < FP_SCALE_PARTS; p++) {
        const ptrdiff_t first = blocks * p / FP_SCALE_PARTS * 4096;
        const ptrdiff_t last_ = blocks * (p + 1) / FP_SCALE_PARTS * 4096, last = last_ < n ? last_ : n;
        double total = 0;
        for (ptrdiff_t lo = first; lo < last; lo += 4096) {
            const ptrdiff_t m = lo + 4096 < last ? 4096 : last - lo;
            const REAL *restrict xs = x + lo;
            REAL *restrict ys = y + lo;
            for (ptrdiff_t i = 0; i < m; i++)
                ys[i] = a * xs[i];
#define FP_X2(i) (xs[i] * xs[i])
            FP_LANE_SUM(total, m, FP_X2);
#undef FP_X2
        }
        part[p] = total;
    }
    double total = 0;
    for (int p = 0; p < FP_SCALE_PARTS; p++)
        total += part[p];
    return total;
}

FP_MULTIVERSION static void FP_NAME(fp_sgd_update)(REAL *params, const REAL *grads, ptrdiff_t n,
                                                   REAL lr)
{
    for (ptrdiff_t i = 0; i < n; i++)
        params[i] -= lr * grads[i];
}

/* The caller (kernels.c) has checked the kind: clipping changes g before the switch. */
FP_MULTIVERSION static int FP_NAME(fp_optimizer_step)(const fp_optimizer *opt, REAL *p, REAL *g,
                                                      REAL *state0, REAL *state1, ptrdiff_t n,
                                                      int64_t t)
{
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
    case FP_OPT_MOMENTUM: { /* buf = mu buf + g (buf starts at 0, so the first step is g) */
        REAL *momentum_buf = state0;
        if (opt->lr_in_velocity) /* v = mu v - lr g; p += v, or Nesterov's p += mu v - lr g */
            FP_MAYBE_PARALLEL(n, for (ptrdiff_t i = 0; i < n; i++) {
                const REAL gi = g[i] + wd * p[i];
                const REAL v = mu * momentum_buf[i] - lr * gi;
                momentum_buf[i] = v;
                p[i] += opt->nesterov ? mu * v - lr * gi : v;
            })
        else if (opt->nesterov)
            FP_MAYBE_PARALLEL(n, for (ptrdiff_t i = 0; i < n; i++) {
                const REAL gi = g[i] + wd * p[i];
                const REAL b = mu * momentum_buf[i] + gi;
                momentum_buf[i] = b;
                p[i] -= lr * (gi + mu * b);
            })
        else
            FP_MAYBE_PARALLEL(n, for (ptrdiff_t i = 0; i < n; i++) {
                const REAL b = mu * momentum_buf[i] + (g[i] + wd * p[i]);
                momentum_buf[i] = b;
                p[i] -= lr * b;
            })
        break;
    }
    case FP_OPT_ADAM:
    case FP_OPT_ADAMW: {
        REAL *exp_avg = state0, *exp_avg_sq = state1; /* Adam's m and v */
        const REAL b1 = (REAL)opt->beta1, b2 = (REAL)opt->beta2;
        const REAL bc1 = (REAL)(1 - pow(opt->beta1, (double)t));
        const REAL sqrt_bc2 = (REAL)sqrt(1 - pow(opt->beta2, (double)t));
        const REAL step = lr / bc1;
        /* scikit-learn's lr sqrt(bc2) / bc1 m / (sqrt(v) + eps) is torch's with eps / sqrt(bc2) */
        const REAL eps_t = opt->eps_outside ? (REAL)(opt->eps / sqrt(1 - pow(opt->beta2, (double)t)))
                                            : eps;
        const REAL l2 = opt->kind == FP_OPT_ADAM ? wd : (REAL)0;
        const REAL decay = opt->kind == FP_OPT_ADAMW ? (REAL)1 - lr * wd : (REAL)1;
        /* element by element: shared among threads for a large model, the same bits */
        FP_MAYBE_PARALLEL(n, for (ptrdiff_t i = 0; i < n; i++) {
            const REAL gi = g[i] + l2 * p[i];
            const REAL m = b1 * exp_avg[i] + ((REAL)1 - b1) * gi;
            const REAL v = b2 * exp_avg_sq[i] + ((REAL)1 - b2) * gi * gi;
            exp_avg[i] = m;
            exp_avg_sq[i] = v;
            p[i] = p[i] * decay - step * m / (sqrt(v) / sqrt_bc2 + eps_t);
        })
        break;
    }
    case FP_OPT_RMSPROP: {
        REAL *square_avg = state0;
        const REAL a = (REAL)opt->alpha;
        for (ptrdiff_t i = 0; i < n; i++) {
            const REAL gi = g[i] + wd * p[i];
            const REAL v = a * square_avg[i] + ((REAL)1 - a) * gi * gi;
            square_avg[i] = v;
            p[i] -= lr * gi / (sqrt(v) + eps);
        }
        break;
    }
    case FP_OPT_SGD: /* with weight decay */
        for (ptrdiff_t i = 0; i < n; i++)
            p[i] -= lr * (g[i] + wd * p[i]);
        break;
    default:
        return FP_ERR_CODE;
    }
    return FP_OK;
}

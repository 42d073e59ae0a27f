/* The three products of a narrow layer without BLAS. For a layer of K inputs and M outputs with
 * K * M small (the seeds' 2-4-1 network, the output layer of a binary classifier), a BLAS call
 * costs more in its interface, its zeroing of C and its packing than in its arithmetic; these
 * loops do the arithmetic only. A row of M outputs is a few registers: the loops are compiled
 * once per width M from 1 to 8 (and K from 1 to 8 when M is 1), so that the compiler unrolls
 * and vectorizes them with no loop over a runtime width left; wider layers take the same loops
 * over a runtime width. Every sum runs in a fixed order (FP_SMALL_LANES below), so no ISA
 * version reassociates anything and all give the same bits. The kernels of
 * _kernels.pyx take these for the layers fp_small_layer() accepts (kernels.c); they are tested
 * against BLAS. Included once per dtype by kernels.c. */

#ifndef FP_SMALL_ONCE
#define FP_SMALL_ONCE
/* Runs BODY with the name W_ bound to a compile-time constant equal to WIDTH when WIDTH is 1 to
 * 8, else to WIDTH itself. */
#define FP_BY_WIDTH(WIDTH, BODY)                                                                   \
    switch (WIDTH) {                                                                                \
    case 1: { enum { W_ = 1 }; BODY; } break;                                                       \
    case 2: { enum { W_ = 2 }; BODY; } break;                                                       \
    case 3: { enum { W_ = 3 }; BODY; } break;                                                       \
    case 4: { enum { W_ = 4 }; BODY; } break;                                                       \
    case 5: { enum { W_ = 5 }; BODY; } break;                                                       \
    case 6: { enum { W_ = 6 }; BODY; } break;                                                       \
    case 7: { enum { W_ = 7 }; BODY; } break;                                                       \
    case 8: { enum { W_ = 8 }; BODY; } break;                                                       \
    default: { const ptrdiff_t W_ = (WIDTH); BODY; } break;                                         \
    }

/* Z = A W, per row: z = sum_k a_k W[k, :] with M = W_. */
#define FP_SMALL_ROWS(A, W, Z, n, K)                                                               \
    for (ptrdiff_t i = 0; i < (n); i++) {                                                           \
        const REAL *a = (A) + i * (K);                                                              \
        REAL *z = (Z) + i * W_;                                                                     \
        REAL acc[W_];                                                                               \
        for (ptrdiff_t j = 0; j < W_; j++)                                                          \
            acc[j] = a[0] * (W)[j];                                                                 \
        for (ptrdiff_t k = 1; k < (K); k++)                                                         \
            for (ptrdiff_t j = 0; j < W_; j++)                                                      \
                acc[j] += a[k] * (W)[k * W_ + j];                                                   \
        for (ptrdiff_t j = 0; j < W_; j++)                                                          \
            z[j] = acc[j];                                                                          \
    }

/* Z = A w for one output column, per row: the dot product of a (K = W_) with w. */
#define FP_SMALL_DOTS(A, w, Z, n)                                                                  \
    for (ptrdiff_t i = 0; i < (n); i++) {                                                           \
        const REAL *a = (A) + i * W_;                                                               \
        REAL s = a[0] * (w)[0];                                                                     \
        for (ptrdiff_t k = 1; k < W_; k++)                                                          \
            s += a[k] * (w)[k];                                                                     \
        (Z)[i] = s;                                                                                 \
    }

/* The sums over samples below run in FP_SMALL_LANES independent chains (sample i in chain
 * i % FP_SMALL_LANES, the chains added pairwise at the end): a fixed order, with no add waiting
 * on the one before it. */
#define FP_SMALL_LANES 4

/* G (K x M, M = W_) = the sum over samples of the outer products of the rows of A and dZ, one
 * row of G at a time (held in registers while the samples stream past); g (M) = the column
 * sums of dZ. */
#define FP_SMALL_OUTER(A, dZ, G, g, n, K)                                                          \
    for (ptrdiff_t k = 0; k <= (K); k++) { /* k == K: the bias row */                              \
        REAL acc[FP_SMALL_LANES][W_];                                                               \
        for (int l = 0; l < FP_SMALL_LANES; l++)                                                    \
            for (ptrdiff_t j = 0; j < W_; j++)                                                      \
                acc[l][j] = 0;                                                                      \
        ptrdiff_t i = 0;                                                                            \
        if (k < (K)) {                                                                              \
            for (; i + FP_SMALL_LANES <= (n); i += FP_SMALL_LANES)                                  \
                for (int l = 0; l < FP_SMALL_LANES; l++) {                                          \
                    const REAL s = (A)[(i + l) * (K) + k];                                          \
                    for (ptrdiff_t j = 0; j < W_; j++)                                              \
                        acc[l][j] += s * (dZ)[(i + l) * W_ + j];                                    \
                }                                                                                   \
            for (int l = 0; i < (n); i++, l++)                                                      \
                for (ptrdiff_t j = 0; j < W_; j++)                                                  \
                    acc[l][j] += (A)[i * (K) + k] * (dZ)[i * W_ + j];                               \
        } else {                                                                                    \
            for (; i + FP_SMALL_LANES <= (n); i += FP_SMALL_LANES)                                  \
                for (int l = 0; l < FP_SMALL_LANES; l++)                                            \
                    for (ptrdiff_t j = 0; j < W_; j++)                                              \
                        acc[l][j] += (dZ)[(i + l) * W_ + j];                                        \
            for (int l = 0; i < (n); i++, l++)                                                      \
                for (ptrdiff_t j = 0; j < W_; j++)                                                  \
                    acc[l][j] += (dZ)[i * W_ + j];                                                  \
        }                                                                                           \
        for (ptrdiff_t j = 0; j < W_; j++)                                                          \
            (k < (K) ? (G) + k * W_ : (g))[j] = (acc[0][j] + acc[1][j]) + (acc[2][j] + acc[3][j]); \
    }

/* G (K = W_, one column) = the rows of A times their one dZ, summed over samples; g[0] = the sum
 * of dZ. */
#define FP_SMALL_COLUMN(A, dZ, G, g, n)                                                            \
    {                                                                                               \
        REAL col[FP_SMALL_LANES][W_], bias[FP_SMALL_LANES] = {0};                                   \
        for (int l = 0; l < FP_SMALL_LANES; l++)                                                    \
            for (ptrdiff_t k = 0; k < W_; k++)                                                      \
                col[l][k] = 0;                                                                      \
        ptrdiff_t i = 0;                                                                            \
        for (; i + FP_SMALL_LANES <= (n); i += FP_SMALL_LANES)                                      \
            for (int l = 0; l < FP_SMALL_LANES; l++) {                                              \
                const REAL *a = (A) + (i + l) * W_;                                                 \
                const REAL d = (dZ)[i + l];                                                         \
                for (ptrdiff_t k = 0; k < W_; k++)                                                  \
                    col[l][k] += a[k] * d;                                                          \
                bias[l] += d;                                                                       \
            }                                                                                       \
        for (int l = 0; i < (n); i++, l++) {                                                        \
            for (ptrdiff_t k = 0; k < W_; k++)                                                      \
                col[l][k] += (A)[i * W_ + k] * (dZ)[i];                                             \
            bias[l] += (dZ)[i];                                                                     \
        }                                                                                           \
        for (ptrdiff_t k = 0; k < W_; k++)                                                          \
            (G)[k] = (col[0][k] + col[1][k]) + (col[2][k] + col[3][k]);                             \
        (g)[0] = (bias[0] + bias[1]) + (bias[2] + bias[3]);                                         \
    }
/* The loops over samples are left to run one sample (or FP_SMALL_LANES samples) per step, their
 * rows of W_ values unrolled and packed into vectors (SLP); vectorizing across samples instead
 * makes strided gathers and ordered reductions of them. */
#define FP_SMALL_SLP __attribute__((optimize("no-tree-loop-vectorize")))
#endif /* FP_SMALL_ONCE */

/* Z = A W (n x K times K x M), written, not accumulated. */
FP_MULTIVERSION static void FP_NAME(fp_small_forward)(const REAL *A, const REAL *W, REAL *Z,
                                                      ptrdiff_t n, ptrdiff_t K, ptrdiff_t M)
{
    if (M == 1) {
        FP_BY_WIDTH(K, FP_SMALL_DOTS(A, W, Z, n))
    } else {
        FP_BY_WIDTH(M, FP_SMALL_ROWS(A, W, Z, n, K))
    }
}

/* dA = dZ W^T (n x M times M x K), through W^T (M x K) copied to the stack. */
FP_MULTIVERSION static void FP_NAME(fp_small_delta)(const REAL *dZ, const REAL *W, REAL *dA,
                                                    ptrdiff_t n, ptrdiff_t K, ptrdiff_t M)
{
    REAL Wt[FP_SMALL_MAX];
    for (ptrdiff_t k = 0; k < K; k++)
        for (ptrdiff_t j = 0; j < M; j++)
            Wt[j * K + k] = W[k * M + j];
    if (K == 1) {
        FP_BY_WIDTH(M, FP_SMALL_DOTS(dZ, Wt, dA, n))
    } else {
        FP_BY_WIDTH(K, FP_SMALL_ROWS(dZ, Wt, dA, n, M))
    }
}

/* dW = alpha A^T dZ + beta dW (K x M; dW is not read when beta is 0) and db = the column sums of
 * dZ (+ db if accumulate). A^T dZ and the sums are gathered on the stack first. */
FP_MULTIVERSION FP_SMALL_SLP static void FP_NAME(fp_small_weight_gradient)(const REAL *A, const REAL *dZ,
                                                              REAL *dW, REAL *db, ptrdiff_t n,
                                                              ptrdiff_t K, ptrdiff_t M,
                                                              REAL alpha, REAL beta,
                                                              int accumulate)
{
    REAL G[FP_SMALL_MAX], g[FP_SMALL_MAX_OUT];
    if (M == 1) {
        FP_BY_WIDTH(K, FP_SMALL_COLUMN(A, dZ, G, g, n))
    } else {
        FP_BY_WIDTH(M, FP_SMALL_OUTER(A, dZ, G, g, n, K))
    }
    for (ptrdiff_t t = 0; t < K * M; t++)
        dW[t] = beta == 0 ? alpha * G[t] : alpha * G[t] + beta * dW[t];
    for (ptrdiff_t j = 0; j < M; j++)
        db[j] = accumulate ? db[j] + g[j] : g[j];
}

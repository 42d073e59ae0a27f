/* The first layer's two products when X is a CSR matrix: row r of X holds values[k] at column
 * indices[k] for k in [indptr[r], indptr[r + 1]). A batch is n rows of X: ids[0..n) or, when ids
 * is NULL, first .. first + n - 1. Duplicate column indices in a row add up, as scipy sums them;
 * the order of a row's indices does not matter beyond rounding. Both products walk only the
 * stored values: the forward product reads the rows of W that a batch row names, and the weight
 * gradient writes only those rows of its target. Every sum runs in the order of the stored values,
 * whatever the number of threads, so the bits do not depend on them. Included once per dtype by
 * kernels.c. */

#ifndef FP_SPARSE_ONCE
#define FP_SPARSE_ONCE
#ifdef _OPENMP
#include <omp.h>
#endif
/* Products of at least this many multiply-adds are shared among OpenMP threads (a gather-bound
 * loop: a row of W per stored value); smaller ones run on the calling thread. */
#ifndef FP_SPARSE_OMP_MIN
#define FP_SPARSE_OMP_MIN 1048576
#endif
/* The number of values stored in the batch's rows. */
static inline int64_t fp_csr_stored(const int64_t *indptr, const int64_t *ids, ptrdiff_t first,
                                    ptrdiff_t n)
{
    int64_t stored = 0;
    if (!ids)
        return n > 0 ? indptr[first + n] - indptr[first] : 0;
    for (ptrdiff_t i = 0; i < n; i++)
        stored += indptr[ids[i] + 1] - indptr[ids[i]];
    return stored;
}
#endif

/* Columns are taken in blocks of FP_CSR_VECTORS vectors of 32 bytes (8 floats or 4 doubles),
 * whose sums stay in registers while a row's stored values go by (GCC's and Clang's vector
 * types; elsewhere, plain loops); the columns left over one by one. Each sum adds its terms in
 * the stored values' order either way: the same bits. */
#if defined(__GNUC__) && !defined(FP_SPARSE_NO_VECTORS)
typedef REAL FP_NAME(fp_csr_vec) __attribute__((vector_size(32), aligned(sizeof(REAL))));
enum { FP_NAME(fp_csr_width) = 32 / (int)sizeof(REAL) };
#define FP_CSR_VECTORS 8

/* acc[0..8) += v * w[0 .. 8 vectors) */
#define FP_CSR_AXPY(acc, v, w)                                                                     \
    do {                                                                                            \
        _Pragma("GCC unroll 8") for (int t_ = 0; t_ < FP_CSR_VECTORS; t_++) {                      \
            FP_NAME(fp_csr_vec) w_;                                                                 \
            memcpy(&w_, (w) + t_ * FP_NAME(fp_csr_width), sizeof w_);                               \
            (acc)[t_] += (v) * w_;                                                                  \
        }                                                                                           \
    } while (0)
#endif

/* Z[i, :] = sum_k values[k] W[indices[k], :] over the stored values of batch row i. */
FP_MULTIVERSION static void FP_NAME(fp_csr_product)(const REAL *values, const int32_t *indices,
                                                   const int64_t *indptr, const int64_t *ids,
                                                   ptrdiff_t first, ptrdiff_t n, const REAL *W,
                                                   ptrdiff_t n_out, REAL *Z)
{
    const int share = fp_csr_stored(indptr, ids, first, n) * n_out >= FP_SPARSE_OMP_MIN;
#pragma omp parallel for schedule(static) if (share)
    for (ptrdiff_t i = 0; i < n; i++) {
        const int64_t r = ids ? ids[i] : first + i, k0 = indptr[r], k1 = indptr[r + 1];
        REAL *restrict z = Z + i * n_out;
        ptrdiff_t jb = 0;
#ifdef FP_CSR_VECTORS
        enum { B = FP_CSR_VECTORS * FP_NAME(fp_csr_width) };
        for (; jb + B <= n_out; jb += B) {
            FP_NAME(fp_csr_vec) acc[FP_CSR_VECTORS];
            memset(acc, 0, sizeof acc);
            for (int64_t k = k0; k < k1; k++)
                FP_CSR_AXPY(acc, values[k], W + (ptrdiff_t)indices[k] * n_out + jb);
            memcpy(z + jb, acc, sizeof acc);
        }
#endif
        for (ptrdiff_t j = jb; j < n_out; j++)
            z[j] = 0;
        for (int64_t k = k0; k < k1 && jb < n_out; k++) {
            const REAL v = values[k];
            const REAL *restrict w = W + (ptrdiff_t)indices[k] * n_out;
            for (ptrdiff_t j = jb; j < n_out; j++)
                z[j] += v * w[j];
        }
    }
}

/* The columns [lo, hi) of G[indices[k], :] += alpha values[k] dZ[i, :], over the batch's rows in
 * order. */
FP_MULTIVERSION static void FP_NAME(fp_csr_scatter_columns)(
    const REAL *values, const int32_t *indices, const int64_t *indptr, const int64_t *ids,
    ptrdiff_t first, ptrdiff_t n, const REAL *dZ, ptrdiff_t n_out, REAL *G, REAL alpha,
    ptrdiff_t lo, ptrdiff_t hi)
{
    for (ptrdiff_t i = 0; i < n; i++) {
        const int64_t r = ids ? ids[i] : first + i, k0 = indptr[r], k1 = indptr[r + 1];
        const REAL *restrict d = dZ + i * n_out;
        ptrdiff_t jb = lo;
#ifdef FP_CSR_VECTORS
        enum { B = FP_CSR_VECTORS * FP_NAME(fp_csr_width) };
        for (; jb + B <= hi; jb += B) {
            FP_NAME(fp_csr_vec) dd[FP_CSR_VECTORS];
            memcpy(dd, d + jb, sizeof dd);
            for (int64_t k = k0; k < k1; k++) {
                const REAL v = alpha * values[k];
                REAL *g = G + (ptrdiff_t)indices[k] * n_out + jb;
                _Pragma("GCC unroll 8") for (int t = 0; t < FP_CSR_VECTORS; t++) {
                    FP_NAME(fp_csr_vec) g_;
                    memcpy(&g_, g + t * FP_NAME(fp_csr_width), sizeof g_);
                    g_ += v * dd[t];
                    memcpy(g + t * FP_NAME(fp_csr_width), &g_, sizeof g_);
                }
            }
        }
#endif
        for (int64_t k = k0; k < k1 && jb < hi; k++) {
            const REAL v = alpha * values[k];
            REAL *restrict g = G + (ptrdiff_t)indices[k] * n_out;
            for (ptrdiff_t j = jb; j < hi; j++)
                g[j] += v * d[j];
        }
    }
}

/* G += alpha X_batch^T dZ, written only in the rows of G that the batch names. Threads share the
 * columns (each its own block of every row): no two write the same value, and each value's sum
 * runs in the same order as on one thread. */
static void FP_NAME(fp_csr_scatter)(const REAL *values, const int32_t *indices,
                                    const int64_t *indptr, const int64_t *ids, ptrdiff_t first,
                                    ptrdiff_t n, const REAL *dZ, ptrdiff_t n_out, REAL *G,
                                    REAL alpha)
{
#ifdef _OPENMP
    if (fp_csr_stored(indptr, ids, first, n) * n_out >= FP_SPARSE_OMP_MIN && n_out >= 32) {
#pragma omp parallel
        {
            const ptrdiff_t t = omp_get_thread_num(), nt = omp_get_num_threads();
            /* blocks of 64 columns, as even as they come */
            const ptrdiff_t line = 64, lines = (n_out + line - 1) / line;
            const ptrdiff_t lo = (lines * t / nt) * line, hi_ = (lines * (t + 1) / nt) * line;
            const ptrdiff_t hi = hi_ < n_out ? hi_ : n_out;
            if (lo < hi)
                FP_NAME(fp_csr_scatter_columns)(values, indices, indptr, ids, first, n, dZ, n_out,
                                                G, alpha, lo, hi);
        }
        return;
    }
#endif
    FP_NAME(fp_csr_scatter_columns)(values, indices, indptr, ids, first, n, dZ, n_out, G, alpha, 0,
                                    n_out);
}

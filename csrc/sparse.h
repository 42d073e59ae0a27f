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

/* Z[i, :] = sum_k values[k] W[indices[k], :] over the stored values of batch row i. */
FP_MULTIVERSION static void FP_NAME(fp_csr_product)(const REAL *values, const int32_t *indices,
                                                   const int64_t *indptr, const int64_t *ids,
                                                   ptrdiff_t first, ptrdiff_t n, const REAL *W,
                                                   ptrdiff_t n_out, REAL *Z)
{
    const int share = fp_csr_stored(indptr, ids, first, n) * n_out >= FP_SPARSE_OMP_MIN;
#pragma omp parallel for schedule(static) if (share)
    for (ptrdiff_t i = 0; i < n; i++) {
        const int64_t r = ids ? ids[i] : first + i;
        REAL *restrict z = Z + i * n_out;
        for (ptrdiff_t j = 0; j < n_out; j++)
            z[j] = 0;
        for (int64_t k = indptr[r]; k < indptr[r + 1]; k++) {
            const REAL v = values[k];
            const REAL *restrict w = W + (ptrdiff_t)indices[k] * n_out;
            for (ptrdiff_t j = 0; j < n_out; j++)
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
        const int64_t r = ids ? ids[i] : first + i;
        const REAL *restrict d = dZ + i * n_out;
        for (int64_t k = indptr[r]; k < indptr[r + 1]; k++) {
            const REAL v = alpha * values[k];
            REAL *restrict g = G + (ptrdiff_t)indices[k] * n_out;
            for (ptrdiff_t j = lo; j < hi; j++)
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
            /* blocks of whole cache lines (16 floats, 8 doubles), as even as they come */
            const ptrdiff_t line = 64 / (ptrdiff_t)sizeof(REAL), lines = (n_out + line - 1) / line;
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

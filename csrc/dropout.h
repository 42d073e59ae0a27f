/* Inverted dropout with the counter-based generator of random.h: the mask of a layer at a step
 * is a pure function of its key, whatever the threads, and the loop vectorizes. Included once
 * per dtype by kernels.c. */

FP_MULTIVERSION static void FP_NAME(fp_dropout)(const REAL *A, REAL *M, REAL *D, ptrdiff_t n,
                                                uint64_t key, REAL rate)
{
    /* the top 24 bits of draw i make the uniform draw */
    const REAL keep = (REAL)1 / ((REAL)1 - rate);
    const uint64_t threshold = (uint64_t)((double)rate * 16777216.0);
    for (ptrdiff_t i = 0; i < n; i++) {
        const REAL m = (fp_random_draw(key, (uint64_t)i) >> 40) >= threshold ? keep : (REAL)0;
        M[i] = m;
        D[i] = A[i] * m;
    }
}

FP_MULTIVERSION static void FP_NAME(fp_mul)(REAL *x, const REAL *m, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i++)
        x[i] *= m[i];
}

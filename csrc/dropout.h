/* Inverted dropout with a counter-based generator: the mask of a layer at a step is a pure
 * function of its key (see fp_dropout_key in kernels.c), whatever the threads, and the loop
 * vectorizes. Included once per dtype by kernels.c. */

FP_MULTIVERSION static void FP_NAME(fp_dropout)(const REAL *A, REAL *M, REAL *D, ptrdiff_t n,
                                                uint64_t key, REAL rate)
{
    /* splitmix64 of key + i; 24 bits make the uniform draw */
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

FP_MULTIVERSION static void FP_NAME(fp_mul)(REAL *x, const REAL *m, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i++)
        x[i] *= m[i];
}

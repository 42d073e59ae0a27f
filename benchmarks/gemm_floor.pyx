# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The benchmarks' GEMM floor: one training step's matrix products alone.

For each layer the forward product, the weight-gradient product and (but for the first layer)
the delta product, through the same BLAS entry point as fastprop's kernels (scipy's
cython_blas), into preallocated outputs, without the GIL. No training step can be faster, so a
step's distance to this floor is its overhead. Two floors: W only read (the weight gradient
into a separate buffer), and W written (the weight gradient accumulated into W, as an update
must): on several threads, writing W moves its cache lines between the cores. Built on first use by compare.py (setup_floor.py);
it is benchmark code and ships nowhere.
"""
from libc.stdlib cimport malloc, free
from scipy.linalg.cython_blas cimport sgemm, dgemm
import time

import numpy as np
cimport numpy as cnp

cnp.import_array()

ctypedef fused floating:
    float
    double


cdef void _gemm(bint trans_a, bint trans_b, int m, int n, int k, floating alpha,
                const floating *A, int lda, const floating *B, int ldb,
                floating beta, floating *C, int ldc) noexcept nogil:
    # row-major C = op(A) op(B) as column-major C^T = op(B)^T op(A)^T, as fastprop's kernels do
    cdef char ta = b'T' if trans_a else b'N'
    cdef char tb = b'T' if trans_b else b'N'
    if floating is float:
        sgemm(&tb, &ta, &n, &m, &k, &alpha, <float *>B, &ldb, <float *>A, &lda, &beta, C, &ldc)
    else:
        dgemm(&tb, &ta, &n, &m, &k, &alpha, <double *>B, &ldb, <double *>A, &lda, &beta, C, &ldc)


cdef void _floor_step(floating one, int L, int *n, int batch, void **W, void **A, void **dW,
                      void **dA, bint write_w) noexcept nogil:
    cdef int l
    cdef floating tiny = <floating>1e-30  # an update too small to change W's values
    for l in range(L):     # Z_l = A_{l-1} W_l
        _gemm(False, False, batch, n[l + 1], n[l], one, <floating *>A[l], n[l],
              <floating *>W[l], n[l + 1], <floating>0, <floating *>A[l + 1], n[l + 1])
    for l in range(L - 1, -1, -1):
        if write_w:  # W_l += -lr A_{l-1}^T dZ_l: the weight gradient accumulated into W
            _gemm(True, False, n[l], n[l + 1], batch, -tiny, <floating *>A[l], n[l],
                  <floating *>dA[l + 1], n[l + 1], one, <floating *>W[l], n[l + 1])
        else:  # dW_l = A_{l-1}^T dZ_l, W only read
            _gemm(True, False, n[l], n[l + 1], batch, one, <floating *>A[l], n[l],
                  <floating *>dA[l + 1], n[l + 1], <floating>0, <floating *>dW[l], n[l + 1])
        if l:  # dA_{l-1} = dZ_l W_l^T
            _gemm(False, True, batch, n[l], n[l + 1], <floating>1, <floating *>dA[l + 1],
                  n[l + 1], <floating *>W[l], n[l + 1], <floating>0, <floating *>dA[l], n[l])


def gemm_floor(list sizes, int batch, long n_steps, dtype, bint write_w=False):
    """Seconds for `n_steps` repetitions of one step's matrix products for layer widths
    `sizes` and `batch` rows; with write_w, the weight-gradient products accumulate into W (as
    plain SGD's update does), so that W is written every step instead of only read."""
    cdef int L = len(sizes) - 1, l
    Ws = [np.ones((sizes[l], sizes[l + 1]), dtype) * 0.01 for l in range(L)]
    As = [np.ones((batch, s), dtype) * 0.01 for s in sizes]
    dWs = [np.empty((sizes[l], sizes[l + 1]), dtype) for l in range(L)]
    dAs = [np.ones((batch, s), dtype) * 0.01 for s in sizes]  # normal numbers: no denormal stalls
    cdef void **W = <void **>malloc(L * sizeof(void *))
    cdef void **A = <void **>malloc((L + 1) * sizeof(void *))
    cdef void **dW = <void **>malloc(L * sizeof(void *))
    cdef void **dA = <void **>malloc((L + 1) * sizeof(void *))
    cdef int *n = <int *>malloc((L + 1) * sizeof(int))
    cdef cnp.ndarray arr
    for l in range(L + 1):
        arr = As[l]
        A[l] = cnp.PyArray_DATA(arr)
        arr = dAs[l]
        dA[l] = cnp.PyArray_DATA(arr)
        n[l] = sizes[l]
    for l in range(L):
        arr = Ws[l]
        W[l] = cnp.PyArray_DATA(arr)
        arr = dWs[l]
        dW[l] = cnp.PyArray_DATA(arr)
    cdef bint single = np.dtype(dtype) == np.float32
    cdef long s
    start = time.perf_counter()
    with nogil:
        for s in range(n_steps):
            if single:
                _floor_step(<float>1, L, n, batch, W, A, dW, dA, write_w)
            else:
                _floor_step(<double>1, L, n, batch, W, A, dW, dA, write_w)
    seconds = time.perf_counter() - start
    free(W); free(A); free(dW); free(dA); free(n)
    return seconds

# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The compiled training path: one call per mini-batch step, one call per epoch.

A Trainer holds pointers into a model's flat parameter buffer and a workspace sized for one batch
size (activations, deltas, the output logits, the gathered batch, and the masks and dropped
activations of dropout layers), all allocated when it is built. `step` runs forward, loss,
deltas, weight gradients and the update for one batch; `epoch` gathers each batch's rows by an
index permutation and runs every step, all without the GIL and without allocating.

With plain SGD the update is fused into the weight-gradient GEMM: W += (-lr) A_prev^T dZ
(beta = 1), after the delta that needs the old W, and b -= lr sum(dZ); so no gradient buffer is
written. Any other optimizer (momentum, Adam, AdamW, RMSprop, weight decay, clipping) gets the
gradients in the flat gradient buffer and runs one fused pass over it (optimizer_step).
"""
from libc.stdint cimport int64_t
from libc.string cimport memcpy
from libc.stdlib cimport malloc, free

import numpy as np
cimport numpy as cnp

cnp.import_array()

from libc.stdint cimport uint64_t
from fastprop._kernels cimport (floating, gemm, forward_layer, delta_layer, weight_gradient,
                                loss_gradient, sgd_update, column_sum, fp_optimizer,
                                optimizer_step, make_optimizer, dropout, mul,
                                activation_backward, dropout_key)


cdef struct Net:
    int n_layers
    int *sizes              # n_layers + 1 widths: n_in of layer 0, then each n_out
    int *acts               # activation code per layer
    double *slopes          # leaky relu slope per layer
    Py_ssize_t *w_off       # offset of W_l in params; b_l follows it
    Py_ssize_t n_params
    void *params
    void *grads
    void **A                # per layer (capacity, n_out)
    void **dZ               # per layer (capacity, n_out)
    void *Z                 # output logits (capacity, n_out)
    void *Xb                # gathered batch (capacity, n_in)
    void *Yb                # gathered targets (capacity, n_out), or NULL
    int64_t *Lb             # gathered labels (capacity,), or NULL
    int loss
    bint fused_sgd          # update inside the weight-gradient GEMM
    fp_optimizer opt        # otherwise: gradients into grads, then this optimizer's step
    void *s1                # its state buffers (flat, like params), or NULL
    void *s2
    int64_t t               # steps taken by the optimizer
    double *drop            # dropout rate after each layer (0: none)
    void **M                # per layer with dropout: its mask (capacity, n_out), else NULL
    void **D                # per layer with dropout: the dropped activations, else NULL
    uint64_t seed           # dropout masks come from (seed, dstep, layer)
    int64_t dstep           # training steps taken, for the dropout masks


cdef double _step(Net *net, const floating *X, const floating *Y, const int64_t *labels,
                  int n, floating lr, int64_t *n_correct) noexcept nogil:
    cdef int L = net.n_layers, l, n_in, n_out
    cdef floating *params = <floating *>net.params
    cdef floating *grads = <floating *>net.grads
    cdef floating *W
    cdef floating *Wg
    cdef const floating *A_prev = X
    cdef Py_ssize_t j
    cdef double value
    for l in range(L):
        n_in = net.sizes[l]
        n_out = net.sizes[l + 1]
        W = params + net.w_off[l]
        forward_layer(A_prev, n_in, False, W, n_out, False, W + <Py_ssize_t>n_in * n_out,
                      <floating *>net.Z if l == L - 1 else NULL, <floating *>net.A[l],
                      n, n_in, n_out, net.acts[l], <floating>net.slopes[l])
        A_prev = <floating *>net.A[l]
        if net.drop[l] > 0:  # inverted dropout: the next layer sees D = A * M
            dropout(A_prev, <floating *>net.M[l], <floating *>net.D[l], <Py_ssize_t>n * n_out,
                    dropout_key(net.seed, net.dstep, l), <floating>net.drop[l])
            A_prev = <floating *>net.D[l]
    value = loss_gradient(net.loss, <floating *>net.Z, <floating *>net.A[L - 1], Y, labels,
                          <floating *>net.dZ[L - 1], n, net.sizes[L], net.acts[L - 1],
                          <floating>net.slopes[L - 1], n_correct)
    for l in range(L - 1, -1, -1):
        n_in = net.sizes[l]
        n_out = net.sizes[l + 1]
        W = params + net.w_off[l]
        if l == 0:
            A_prev = X
        else:
            A_prev = <floating *>(net.D[l - 1] if net.drop[l - 1] > 0 else net.A[l - 1])
        if l and net.drop[l - 1] > 0:  # dZ_{l-1} = (dZ_l W_l^T) * M * f'(.)
            gemm(False, True, n, n_in, n_out, <floating>1, <floating *>net.dZ[l], n_out, W, n_out,
                 <floating>0, <floating *>net.dZ[l - 1], n_in)
            mul(<floating *>net.dZ[l - 1], <floating *>net.M[l - 1], <Py_ssize_t>n * n_in)
            activation_backward(<floating *>net.dZ[l - 1], <floating *>net.A[l - 1],
                                <Py_ssize_t>n * n_in, net.acts[l - 1],
                                <floating>net.slopes[l - 1])
        elif l:  # dZ_{l-1} = (dZ_l W_l^T) * f'(.), with W_l before its update
            delta_layer(<floating *>net.dZ[l], n_out, False, W, n_out, False,
                        <floating *>net.A[l - 1], <floating *>net.dZ[l - 1], n, n_in, n_out,
                        net.acts[l - 1], <floating>net.slopes[l - 1])
        Wg = grads + net.w_off[l]
        if net.fused_sgd:
            # W += (-lr) A_prev^T dZ: the update is the weight-gradient GEMM; b -= lr sum(dZ)
            gemm(True, False, n_in, n_out, n, -lr, A_prev, n_in, <floating *>net.dZ[l], n_out,
                 <floating>1, W, n_out)
            column_sum(<floating *>net.dZ[l], n, n_out, Wg + <Py_ssize_t>n_in * n_out, False)
            sgd_update(W + <Py_ssize_t>n_in * n_out, Wg + <Py_ssize_t>n_in * n_out, n_out, lr)
        else:
            weight_gradient(A_prev, n_in, False, <floating *>net.dZ[l], Wg,
                            Wg + <Py_ssize_t>n_in * n_out, n, n_in, n_out, False)
    if not net.fused_sgd:
        net.t += 1
        optimizer_step(&net.opt, params, grads, <floating *>net.s1, <floating *>net.s2,
                       net.n_params, net.t)
    net.dstep += 1
    return value




cdef double _epoch(Net *net, const floating *X, const floating *Y, const int64_t *labels,
                   const int64_t *order, Py_ssize_t n, int batch_size, int n_in, int n_y,
                   floating lr, int64_t *n_correct) noexcept nogil:
    """Every batch of one epoch; returns the sum over batches of (batch loss * batch size).
    With `order`, batch rows are gathered into the workspace; without it, read in place."""
    cdef Py_ssize_t lo, i, r
    cdef int bs
    cdef double total = 0
    cdef floating *Xb = <floating *>net.Xb
    cdef floating *Yb = <floating *>net.Yb
    cdef size_t x_row = n_in * sizeof(floating), y_row = n_y * sizeof(floating)
    lo = 0
    while lo < n:
        bs = <int>(batch_size if n - lo > batch_size else n - lo)
        if order == NULL:
            total += bs * _step(net, X + lo * n_in, Y + lo * n_y if Y != NULL else NULL,
                                labels + lo if labels != NULL else NULL, bs, lr, n_correct)
        else:
            for i in range(bs):
                r = order[lo + i]
                memcpy(Xb + i * n_in, X + r * n_in, x_row)
                if Y != NULL:
                    memcpy(Yb + i * n_y, Y + r * n_y, y_row)
                else:
                    net.Lb[i] = labels[r]
            total += bs * _step(net, Xb, Yb if Y != NULL else NULL,
                                net.Lb if labels != NULL else NULL, bs, lr, n_correct)
        lo += bs
    return total


cdef class Trainer:
    """The compiled training loop of one model for batches of up to `capacity` rows.

    Built by Sequential.fit; holds its workspace and pointers into the model's buffers (and a
    reference to them, so they outlive it).
    """
    cdef Net net
    cdef object model_params, model_grads, buffers, state
    cdef readonly int capacity
    cdef readonly object dtype
    cdef readonly bint labels
    cdef int n_y

    def __cinit__(self, params, grads, list sizes, list acts, list slopes, int loss,
                  int capacity, bint labels, bint fused_sgd=True, list drops=None):
        cdef int L = len(acts), l
        self.net.n_layers = 0
        self.net.sizes = <int *>malloc((L + 1) * sizeof(int))
        self.net.acts = <int *>malloc(L * sizeof(int))
        self.net.slopes = <double *>malloc(L * sizeof(double))
        self.net.w_off = <Py_ssize_t *>malloc(L * sizeof(Py_ssize_t))
        self.net.A = <void **>malloc(L * sizeof(void *))
        self.net.dZ = <void **>malloc(L * sizeof(void *))
        self.net.M = <void **>malloc(L * sizeof(void *))
        self.net.D = <void **>malloc(L * sizeof(void *))
        self.net.drop = <double *>malloc(L * sizeof(double))
        if (self.net.sizes == NULL or self.net.acts == NULL or self.net.slopes == NULL or
                self.net.w_off == NULL or self.net.A == NULL or self.net.dZ == NULL or
                self.net.M == NULL or self.net.D == NULL or self.net.drop == NULL):
            raise MemoryError()
        self.net.seed = 0
        self.net.dstep = 0
        self.net.n_layers = L
        self.dtype = params.dtype
        self.capacity = capacity
        self.labels = labels
        self.model_params = params
        self.model_grads = grads
        cdef Py_ssize_t off = 0
        self.buffers = []
        for l in range(L + 1):
            self.net.sizes[l] = sizes[l]
        for l in range(L):
            self.net.acts[l] = acts[l]
            self.net.slopes[l] = slopes[l]
            self.net.w_off[l] = off
            off += <Py_ssize_t>sizes[l] * sizes[l + 1] + sizes[l + 1]
            rate = 0.0 if drops is None else float(drops[l])
            if not 0 <= rate < 1 or (rate > 0 and l == L - 1):
                raise ValueError(f"drops[{l}]: expected a rate in [0, 1), none after the output")
            self.net.drop[l] = rate
            self.net.M[l] = self.net.D[l] = NULL
            if rate > 0:
                mask = np.empty((capacity, sizes[l + 1]), self.dtype)
                dropped = np.empty((capacity, sizes[l + 1]), self.dtype)
                self.buffers += [mask, dropped]
                self.net.M[l] = _address(mask)
                self.net.D[l] = _address(dropped)
            for target in (0, 1):
                buf = np.empty((capacity, sizes[l + 1]), self.dtype)
                self.buffers.append(buf)
                if target == 0:
                    self.net.A[l] = _address(buf)
                else:
                    self.net.dZ[l] = _address(buf)
        if off != params.size:
            raise ValueError(f"params: expected {off} parameters, got {params.size}")
        self.net.n_params = off
        self.net.params = _address(params)
        self.net.grads = _address(grads)
        self.n_y = 0 if labels else sizes[L]
        extra = [np.empty((capacity, sizes[L]), self.dtype),        # Z
                 np.empty((capacity, sizes[0]), self.dtype),        # Xb
                 np.empty((capacity, max(self.n_y, 1)), self.dtype),  # Yb
                 np.empty(capacity, np.int64)]                      # Lb
        self.buffers += extra
        self.net.Z = _address(extra[0])
        self.net.Xb = _address(extra[1])
        self.net.Yb = _address(extra[2])
        self.net.Lb = <int64_t *><size_t>_address(extra[3])
        self.net.loss = loss
        self.net.fused_sgd = fused_sgd
        self.net.s1 = self.net.s2 = NULL
        self.net.t = 0
        self.net.opt = make_optimizer({"kind": 0, "lr": 0.0})

    def set_optimizer(self, dict hyper, s1, s2, long long t):
        """The optimizer of the unfused path: its hyperparameters, state buffers (flat arrays
        like params, or None) and the steps it has taken."""
        for buf in (s1, s2):
            if buf is not None and (buf.shape != self.model_params.shape or
                                    buf.dtype != self.dtype or not buf.flags.c_contiguous):
                raise ValueError("optimizer state: expected C-contiguous buffers like params")
        self.net.opt = make_optimizer(hyper)
        self.state = (s1, s2)
        self.net.s1 = _address(s1) if s1 is not None else NULL
        self.net.s2 = _address(s2) if s2 is not None else NULL
        self.net.t = t

    @property
    def t(self):
        """The optimizer's step count after the last call."""
        return self.net.t

    def set_dropout_state(self, unsigned long long seed, long long step):
        """The seed of the dropout masks and the number of steps taken so far."""
        self.net.seed = seed
        self.net.dstep = step

    @property
    def dropout_step(self):
        return self.net.dstep

    def __dealloc__(self):
        free(self.net.M)
        free(self.net.D)
        free(self.net.drop)
        free(self.net.sizes)
        free(self.net.acts)
        free(self.net.slopes)
        free(self.net.w_off)
        free(self.net.A)
        free(self.net.dZ)

    def _check(self, X, Y, labels, n_rows):
        """The arrays the compiled loop will read: right dtype, C order, enough rows and
        columns. Sequential passes checked data; this keeps a direct caller from a crash."""
        def bad(name, what):
            return ValueError(f"{name}: expected {what}")
        if not (isinstance(X, np.ndarray) and X.dtype == self.dtype and X.flags.c_contiguous
                and X.ndim == 2 and X.shape[1] == self.net.sizes[0]):
            raise bad("X", f"a C-contiguous {self.dtype} array with {self.net.sizes[0]} columns")
        if self.labels:
            if not (isinstance(labels, np.ndarray) and labels.dtype == np.int64 and
                    labels.ndim == 1 and labels.flags.c_contiguous and labels.shape[0] >= n_rows):
                raise bad("labels", f"C-contiguous int64 labels for {n_rows} rows")
            if n_rows and (labels[:n_rows].min() < 0 or
                           labels[:n_rows].max() >= self.net.sizes[self.net.n_layers]):
                raise bad("labels", "labels within the output layer's classes")
        elif not (isinstance(Y, np.ndarray) and Y.dtype == self.dtype and Y.flags.c_contiguous
                  and Y.ndim == 2 and Y.shape[1] == self.n_y and Y.shape[0] >= n_rows):
            raise bad("Y", f"a C-contiguous {self.dtype} array ({n_rows}, {self.n_y})")

    def step(self, X, Y, labels, double lr):
        """One step on a checked batch (C-contiguous, at most `capacity` rows). Returns
        (mean loss, number correct)."""
        cdef int64_t n_correct = 0
        cdef double value
        self._check(X, Y, labels, X.shape[0] if isinstance(X, np.ndarray) else 0)
        cdef int n = X.shape[0]
        cdef void *x = _address(X)
        cdef void *y = _address(Y) if Y is not None else NULL
        cdef int64_t *lab = <int64_t *>_address(labels) if labels is not None else NULL
        if n > self.capacity:
            raise ValueError(f"X: expected at most {self.capacity} rows, got {n}")
        if self.dtype == np.float32:
            with nogil:
                value = _step[float](&self.net, <float *>x, <float *>y, lab, n, <float>lr, &n_correct)
        else:
            with nogil:
                value = _step[double](&self.net, <double *>x, <double *>y, lab, n, lr, &n_correct)
        return value, n_correct

    def epoch(self, X, Y, labels, order, int batch_size, double lr):
        """One epoch over checked data in batches of `batch_size` (<= capacity), in the row
        order `order` (int64, or None for the stored order). Returns (sum of batch loss times
        batch size, number correct)."""
        cdef int64_t n_correct = 0
        cdef double total
        self._check(X, Y, labels, X.shape[0] if isinstance(X, np.ndarray) else 0)
        cdef Py_ssize_t n = X.shape[0]
        if order is not None:  # the rows visited are order's entries: they must index X
            if not (isinstance(order, np.ndarray) and order.dtype == np.int64 and
                    order.ndim == 1 and order.flags.c_contiguous):
                raise ValueError("order: expected a C-contiguous int64 array of row indices")
            if order.shape[0] and (order.min() < 0 or order.max() >= n):
                raise ValueError(f"order: expected row indices in [0, {n}), got "
                                 f"{order.min()} to {order.max()}")
            n = order.shape[0]
        if batch_size < 1:
            raise ValueError(f"batch_size: expected a positive integer, got {batch_size}")
        cdef void *x = _address(X)
        cdef void *y = _address(Y) if Y is not None else NULL
        cdef int64_t *lab = <int64_t *>_address(labels) if labels is not None else NULL
        cdef int64_t *o = <int64_t *>_address(order) if order is not None else NULL
        cdef int n_in = self.net.sizes[0]
        if batch_size > self.capacity:
            raise ValueError(f"batch_size: expected at most {self.capacity}, got {batch_size}")
        if self.dtype == np.float32:
            with nogil:
                total = _epoch[float](&self.net, <float *>x, <float *>y, lab, o, n, batch_size,
                                      n_in, self.n_y, <float>lr, &n_correct)
        else:
            with nogil:
                total = _epoch[double](&self.net, <double *>x, <double *>y, lab, o, n, batch_size,
                                       n_in, self.n_y, lr, &n_correct)
        return total, n_correct


cdef inline void *_address(cnp.ndarray arr) except NULL:
    # callers pass arrays that Sequential checked: C-contiguous, the model's dtype
    return cnp.PyArray_DATA(arr)


def gemm_floor(list sizes, int batch, long n_steps, dtype):
    """Seconds for `n_steps` repetitions of one training step's matrix products alone: for each
    layer the forward product, the weight-gradient product and (but for the first layer) the
    delta product, through the same BLAS entry point as the kernels, into preallocated outputs,
    without the GIL. No training step can be faster: it is the benchmarks' floor."""
    import time
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
    for l in range(L + 1):
        A[l] = _address(As[l])
        dA[l] = _address(dAs[l])
        n[l] = sizes[l]
    for l in range(L):
        W[l] = _address(Ws[l])
        dW[l] = _address(dWs[l])
    cdef bint single = np.dtype(dtype) == np.float32
    cdef long s
    start = time.perf_counter()
    with nogil:
        for s in range(n_steps):
            if single:
                _floor_step(<float>1, L, n, batch, W, A, dW, dA)
            else:
                _floor_step(<double>1, L, n, batch, W, A, dW, dA)
    seconds = time.perf_counter() - start
    free(W); free(A); free(dW); free(dA); free(n)
    return seconds


cdef void _floor_step(floating one, int L, int *n, int batch, void **W, void **A, void **dW,
                      void **dA) noexcept nogil:
    cdef int l
    for l in range(L):     # Z_l = A_{l-1} W_l
        gemm(False, False, batch, n[l + 1], n[l], one, <floating *>A[l], n[l],
             <floating *>W[l], n[l + 1], <floating>0, <floating *>A[l + 1], n[l + 1])
    for l in range(L - 1, -1, -1):
        # dW_l = A_{l-1}^T dZ_l
        gemm(True, False, n[l], n[l + 1], batch, <floating>1, <floating *>A[l], n[l],
             <floating *>dA[l + 1], n[l + 1], <floating>0, <floating *>dW[l], n[l + 1])
        if l:  # dA_{l-1} = dZ_l W_l^T
            gemm(False, True, batch, n[l], n[l + 1], <floating>1, <floating *>dA[l + 1],
                 n[l + 1], <floating *>W[l], n[l + 1], <floating>0, <floating *>dA[l], n[l])

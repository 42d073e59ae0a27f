# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The engine: the one implementation of forward and backward propagation.

An Engine is built from one description of the network (a LayerSpec per Dense layer) and a
model's flat parameter and gradient buffers; it allocates its workspace once, for batches of up
to `capacity` rows, and offers the passes that every public method drives:

    predict    forward only, dropout off, in chunks                        (predict)
    loss       forward and the loss, no gradients, in chunks               (evaluate, gradcheck)
    gradients  forward and backward into the gradient buffer, no update,
               in chunks whose gradients add up (sample weights, L2, and
               optionally every layer's Z, A and delta kept)               (loss_and_gradients,
                                                                            explain, lbfgs)
    epoch      every step of (part of) an epoch over checked Data          (fit, train_step)
    epochs     whole epochs in one call, shuffles and snapshots inside     (fit)
    part       a rank's part of a data-parallel step, no update            (fit with comm)
    update     the bound optimizer's step over the gradient buffer         (Optimizer.step)

A step is: Z = A_prev W + b, A = f(Z) per layer; the loss and dZ_L = dL/dZ_L; then per layer,
from the output down, dZ_{l-1} = (dZ_l W_l^T) * f'(.) (with W_l before its update) and
dW_l = A_{l-1}^T dZ_l, db_l = sum dZ_l. The update is either inside that weight-gradient product
(plain SGD: W += -lr A_{l-1}^T dZ_l, BLAS beta = 1, so the gradient buffer is not written) or
one fused pass of the bound optimizer over the flat buffers, after the whole gradient is in the
gradient buffer. The passes run without the GIL and never allocate. The engine checks every array
it will dereference when it is built or handed one, and runs one pass at a time on its model
(the lock is the model's, shared by every engine the model builds).

Between two steps (or chunks) a pass looks up: while a fork is pending it parks (csrc/gate.c),
and about every 50 ms of work it takes the GIL to run Python's signal handlers; when one raises
(Ctrl-C: KeyboardInterrupt), the pass stops there, never inside a step, and the exception is
raised when the pass returns.

This file is the Engine class, which builds the network's description (Net) and workspace,
checks every array it is handed and drives the passes; the passes themselves, which run without
the GIL on a Net, are in _passes.pxi, compiled into this module.
"""
from libc.limits cimport INT_MAX
from libc.stdint cimport int32_t, int64_t, uint64_t
from libc.string cimport memcpy, memset
from libc.stdlib cimport calloc, free
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC
from cpython.exc cimport PyErr_Fetch, PyErr_Restore
from cpython.ref cimport PyObject, Py_XDECREF

import os
import threading

import numpy as np
cimport numpy as cnp

from fastprop._kernels cimport (Copies, Copy, floating, gemm, forward_layer, delta_layer, weight_gradient,
                                axpy, sum_of_squares, make_optimizer, check_activation,
                                check_loss, check_optimizer, check_status,
                                fp_optimizer, fp_optimizer_n_state, fp_activation_info,
                                fp_activation_describe, fp_loss_info, fp_loss_describe,
                                fp_activation_backward, fp_loss_gradient, fp_optimizer_step,
                                fp_sgd_update, fp_column_sum, fp_bias_activation,
                                fp_csr_product, fp_csr_scatter, fp_scale, fp_dropout,
                                fp_dropout_key_at, fp_shuffle,
                                fp_all_finite, fp_pass_begin, fp_pass_end, fp_fork_pending,
                                fp_park, fp_fork_prepare, fp_fork_done,
                                FP_OK, FP_IDENTITY, FP_FLOAT32, FP_FLOAT64, FP_SOFTMAX,
                                FP_LOSS_SOFTMAX_XENT,
                                FP_OPT_SGD)

cnp.import_array()

include "_passes.pxi"


cdef bint _all_below(const int64_t *values, Py_ssize_t n, int64_t high) noexcept nogil:
    """True if every value is in [0, high)."""
    cdef Py_ssize_t i
    cdef bint ok = True
    for i in range(n):
        ok &= (values[i] >= 0) & (values[i] < high)
    return ok


cdef inline bint _is(arr, int type_num, int ndim, bint writable=False):
    """arr is a C-contiguous ndarray of that numpy type (native byte order) with ndim dimensions,
    and writable if asked: read from the array's struct (a fit's checks run on every call)."""
    if not isinstance(arr, cnp.ndarray):
        return False
    cdef cnp.ndarray a = <cnp.ndarray>arr
    return (cnp.PyArray_TYPE(a) == type_num and cnp.PyArray_ISNOTSWAPPED(a) and
            cnp.PyArray_NDIM(a) == ndim and cnp.PyArray_IS_C_CONTIGUOUS(a) and
            (not writable or cnp.PyArray_ISWRITEABLE(a)))


cdef bint _is_shaped(arr, int type_num, tuple shape, bint writable=False):
    """_is, and of exactly this shape."""
    return _is(arr, type_num, len(shape), writable) and arr.shape == shape


cdef int64_t *_order(order, Py_ssize_t n, Py_ssize_t length, bint writable) except? NULL:
    """The row order array (int64 indices into n rows; `length` of them unless -1; writable when
    it is shuffled in place), checked; NULL for None."""
    if order is None:
        return NULL
    if not (_is(order, cnp.NPY_INT64, 1, writable) and (length < 0 or order.shape[0] == length)):
        raise ValueError("order: expected a " + ("writable " if writable else "")
                         + "C-contiguous int64 array of row indices"
                         + (f" for {length} rows" if length >= 0 else ""))
    if not _all_below(<int64_t *>_data(order), order.shape[0], n):
        raise ValueError(f"order: expected row indices in [0, {n})")
    return <int64_t *>_data(order)


cdef bint _weights_ok(const void *weights, Py_ssize_t n, int dtype) noexcept nogil:
    """True if every sample weight is finite and >= 0 (a loop: no temporary array)."""
    cdef Py_ssize_t i
    cdef double w
    for i in range(n):
        w = (<const float *>weights)[i] if dtype == FP_FLOAT32 else (<const double *>weights)[i]
        if not (w >= 0 and _finite(w)):
            return False
    return True


cdef void *_vector(arr, str name, int type_num, Py_ssize_t n, bint writable) except? NULL:
    """The data of a C-contiguous 1-D array of that numpy type and length n (writable if
    asked)."""
    if not (_is(arr, type_num, 1, writable) and cnp.PyArray_DIM(<cnp.ndarray>arr, 0) == n):
        raise ValueError(f"{name}: expected a C-contiguous{' writable' if writable else ''} "
                         f"{cnp.PyArray_DescrFromType(type_num)} array of {n}")
    return _data(arr)


cdef Py_ssize_t _csr_checked(X, int type_num, int n_in) except -1:
    """The number of rows of CSR rows X (fastprop.sparse.CSR) of that type with n_in columns,
    every array and index checked: the passes read only where it points."""
    try:
        values, indices, indptr, shape = X.values, X.indices, X.indptr, X.shape
    except AttributeError:
        raise ValueError(f"X: expected a C-contiguous {cnp.PyArray_DescrFromType(type_num)} "
                         f"array with {n_in} "
                         f"columns, or CSR rows (fastprop.sparse), got {type(X).__name__}") \
            from None
    n = shape[0]
    if not (1 <= n and shape[1] == n_in):
        raise ValueError(f"X: expected CSR rows with {n_in} columns, got shape {shape}")
    _vector(indptr, "X.indptr", cnp.NPY_INT64, n + 1, False)
    cdef const int64_t *ptr = <int64_t *>_data(indptr)
    cdef Py_ssize_t stored = ptr[n]
    _vector(values, "X.values", type_num, stored, False)
    _vector(indices, "X.indices", cnp.NPY_INT32, stored, False)
    if not _csr_ok(ptr, <int32_t *>_data(indices), n, n_in):
        raise ValueError(f"X: expected row pointers from 0 that never decrease and column "
                         f"indices in [0, {n_in})")
    return n


cdef bint _csr_ok(const int64_t *indptr, const int32_t *indices, Py_ssize_t n,
                  int n_in) noexcept nogil:
    cdef Py_ssize_t r
    cdef int64_t k
    cdef bint ok = indptr[0] == 0
    for r in range(n):
        ok &= indptr[r + 1] >= indptr[r]
    if not ok:
        return False
    for k in range(indptr[n]):
        ok &= (indices[k] >= 0) & (indices[k] < n_in)
    return ok


cdef inline void *_data(cnp.ndarray arr):
    return cnp.PyArray_DATA(arr)


cdef class Engine:
    """The compiled passes of one network over one pair of flat buffers (see the module's
    docstring). Built by Sequential, which owns the buffers; the engine keeps references to
    every array it points into, so none is freed under it."""
    cdef Net net
    cdef list _arrays
    cdef object _params, _grads, _dropout_state, _optimizer_state
    cdef readonly int capacity
    cdef readonly object dtype
    cdef int _type            # the numpy type number of dtype
    cdef object _shape        # (dtype code, n_in, n_out, output activation): what Data is for
    cdef object _lock

    def __cinit__(self, layers, params, grads, int capacity, dropout_state, lock=None):
        self.net.layer = NULL
        self.net.A = self.net.Z = self.net.dZ = self.net.mask = self.net.dropped = NULL
        layers = list(layers)
        cdef int L = len(layers), l
        if L < 1:
            raise ValueError("layers: expected at least one layer")
        for name, buf in (("params", params), ("grads", grads)):
            if not (_is(buf, cnp.NPY_FLOAT32, 1, True) or _is(buf, cnp.NPY_FLOAT64, 1, True)):
                raise ValueError(f"{name}: expected a writable C-contiguous 1-D float32 or "
                                 f"float64 array")
        if grads.dtype != params.dtype or grads.shape != params.shape:
            raise ValueError(f"grads: expected the shape and dtype of params {params.shape} "
                             f"{params.dtype}, got {grads.shape} {grads.dtype}")
        if np.may_share_memory(params, grads):
            raise ValueError("grads: must not share memory with params")
        if not 1 <= capacity <= INT_MAX:
            raise ValueError(f"capacity: expected a batch size in [1, {INT_MAX}], got {capacity}")
        if not _is_shaped(dropout_state, cnp.NPY_UINT64, (2,), True):
            raise ValueError("dropout_state: expected a writable uint64 array [seed, step]")
        self.dtype = params.dtype
        self.capacity = capacity
        self.net.dtype = FP_FLOAT32 if params.dtype == np.float32 else FP_FLOAT64
        self._type = cnp.NPY_FLOAT32 if params.dtype == np.float32 else cnp.NPY_FLOAT64
        self.net.n_layers = L
        self.net.capacity = capacity
        self.net.layer = <LayerDesc *>calloc(L, sizeof(LayerDesc))
        self.net.A = <void **>calloc(L, sizeof(void *))
        self.net.Z = <void **>calloc(L, sizeof(void *))
        self.net.dZ = <void **>calloc(L, sizeof(void *))
        self.net.mask = <void **>calloc(L, sizeof(void *))
        self.net.dropped = <void **>calloc(L, sizeof(void *))
        if (self.net.layer == NULL or self.net.A == NULL or self.net.Z == NULL or
                self.net.dZ == NULL or
                self.net.mask == NULL or self.net.dropped == NULL):
            raise MemoryError()
        cdef Py_ssize_t offset = 0
        cdef int widest = 1
        cdef fp_activation_info info
        self._arrays = []
        for l, spec in enumerate(layers):
            n_in, n_out = spec.n_in, spec.n_out
            activation, param, rate = (spec.activation_code, spec.activation_param,
                                       spec.dropout_rate)
            if not (1 <= n_in <= INT_MAX and 1 <= n_out <= INT_MAX):
                raise ValueError(f"layers[{l}]: expected widths in [1, {INT_MAX}], got "
                                 f"({n_in}, {n_out})")
            if l and n_in != layers[l - 1].n_out:
                raise ValueError(f"layers[{l}]: expected n_in={layers[l - 1].n_out}, got {n_in}")
            check_activation(activation)
            if activation == FP_SOFTMAX and l != L - 1:
                raise ValueError(f"layers[{l}]: softmax (code {activation}) is only an output")
            check_status(fp_activation_describe(activation, &info), "activation", activation)
            if not (np.isfinite(param) and param >= 0):
                raise ValueError(f"layers[{l}]: expected a finite activation parameter >= 0, "
                                 f"got {param!r}")
            if not (0 <= rate < 1) or (rate > 0 and l == L - 1):
                raise ValueError(f"layers[{l}]: expected a dropout rate in [0, 1), none after "
                                 f"the output, got {rate}")
            if <double>capacity * max(n_in, n_out) > 2.0 ** 62:
                raise ValueError(f"capacity: {capacity} rows of {max(n_in, n_out)} values "
                                 f"overflow a buffer")
            self.net.layer[l].n_in = n_in
            self.net.layer[l].n_out = n_out
            self.net.layer[l].activation = activation
            self.net.layer[l].param = param
            self.net.layer[l].dropout_rate = rate
            self.net.layer[l].w_offset = offset
            offset += <Py_ssize_t>n_in * n_out + n_out
            widest = max(widest, n_out)
            self.net.A[l] = self._buffer((capacity, n_out))
            if info.needs_z or l == L - 1:  # other layers keep no Z: their pass is in place
                self.net.Z[l] = self._buffer((capacity, n_out))
            self.net.dZ[l] = self._buffer((capacity, n_out))
            if rate > 0:
                self.net.mask[l] = self._buffer((capacity, n_out))
                self.net.dropped[l] = self._buffer((capacity, n_out))
        if offset != params.shape[0]:
            raise ValueError(f"params: expected {offset} parameters for these layers, got "
                             f"{params.shape[0]}")
        self._params, self._grads, self._dropout_state = params, grads, dropout_state
        self.net.params = _data(params)
        self.net.grads = _data(grads)
        self.net.n_params = offset
        self.net.dropout = <uint64_t *>_data(dropout_state)
        cdef int n_in0 = self.net.layer[0].n_in, n_out_last = self.net.layer[L - 1].n_out
        self.net.bias_grad = self._buffer((widest,))
        self.net.X_rows = NULL
        self.net.Y_rows = self._buffer((capacity, n_out_last))
        self.net.sample_rows = self._buffer((capacity,))
        self.net.weight_rows = self._buffer((capacity,))
        self.net.penalty = 0.0
        labels = np.zeros(capacity, np.int64)
        self._arrays.append(labels)
        self.net.label_rows = <int64_t *>_data(labels)
        self.net.update = NO_UPDATE
        self.net.state0 = self.net.state1 = NULL
        self.net.opt_steps = NULL
        self.net.row_work = sum(s.n_in * s.n_out for s in layers)
        self.net.exc_type = self.net.exc_value = self.net.exc_tb = NULL
        # the model's: one pass at a time on the model, whichever of its engines runs it
        self._lock = threading.Lock() if lock is None else lock
        self._shape = (self.net.dtype, n_in0, n_out_last, self.net.layer[L - 1].activation)

    cdef void *_buffer(self, shape) except NULL:
        arr = np.zeros(shape, self.dtype)
        self._arrays.append(arr)
        return _data(arr)

    def __dealloc__(self):
        Py_XDECREF(self.net.exc_type)
        Py_XDECREF(self.net.exc_value)
        Py_XDECREF(self.net.exc_tb)
        free(self.net.layer)
        free(self.net.A)
        free(self.net.Z)
        free(self.net.dZ)
        free(self.net.mask)
        free(self.net.dropped)

    def __reduce__(self):
        raise TypeError("an Engine is rebuilt from its model, not pickled: pickle the model")

    # -----------------------------------------------------------------------------------------
    # What the engine is handed: checked before any pass reads it.

    def bind_optimizer(self, dict hyper, list state, steps, double penalty=0.0):
        """The optimizer that `step`, `epoch` and `update` apply: its hyperparameters, its state
        buffers (as many as its kind reads, each shaped like params) and its step count (a
        writable int64 array of one element, which the engine advances in place); and the L2
        penalty of training steps on the weights (not the biases): penalty / 2 ||W||^2 per
        batch, divided by its size (or by the sum of its sample weights), as scikit-learn's
        alpha."""
        cdef fp_optimizer opt = make_optimizer(hyper)
        for name in ("lr", "momentum", "beta1", "beta2", "eps", "alpha", "weight_decay",
                     "max_norm"):
            if not (hyper[name] >= 0 and hyper[name] < float("inf")):
                raise ValueError(f"optimizer: {name} must be a finite number >= 0, got "
                                 f"{hyper[name]!r}")
        if not (penalty >= 0 and penalty < float("inf")):
            raise ValueError(f"penalty: expected a finite number >= 0, got {penalty!r}")
        check_optimizer(opt.kind)
        cdef int n_state = 0
        check_status(fp_optimizer_n_state(opt.kind, &n_state), "optimizer kind", opt.kind)
        if len(state) != n_state:
            raise ValueError(f"optimizer state: expected {n_state} buffers for this optimizer, "
                             f"got {len(state)}")
        cdef Py_ssize_t n = self.net.n_params
        others = [self._params, self._grads]
        for i, buf in enumerate(state):
            if not _is_shaped(buf, self._type, (n,), True):
                raise ValueError(f"optimizer state[{i}]: expected a writable C-contiguous "
                                 f"{self.dtype} array of shape ({n},)")
            if any(np.may_share_memory(buf, other) for other in others):
                raise ValueError(f"optimizer state[{i}]: must not share memory with the model "
                                 f"or the other state buffer")
            others.append(buf)
        if not _is_shaped(steps, cnp.NPY_INT64, (1,), True):
            raise ValueError("optimizer steps: expected a writable int64 array of one element")
        if any(np.may_share_memory(steps, other) for other in others):
            raise ValueError("optimizer steps: must not share memory with the model or its state")
        with self._lock:  # not while a pass runs in another thread
            self._bind(opt, state, steps, penalty, n_state)

    cdef _bind(self, fp_optimizer opt, list state, steps, double penalty, int n_state):
        self.net.opt = opt
        self.net.state0 = _data(state[0]) if n_state > 0 else NULL
        self.net.state1 = _data(state[1]) if n_state > 1 else NULL
        self.net.opt_steps = <int64_t *>_data(steps)
        self._optimizer_state = (state, steps)
        self.net.penalty = penalty
        if opt.kind == FP_OPT_SGD and opt.weight_decay == 0 and opt.max_norm == 0 and \
                penalty == 0:
            self.net.update = UPDATE_IN_GEMM
        else:
            self.net.update = UPDATE_BY_OPTIMIZER

    @property
    def gradient_buffer(self):
        """The flat gradient buffer the passes write (the model's grads)."""
        return self._grads

    @property
    def keeps_z(self):
        """Per layer, whether the engine keeps its pre-activation Z: the output's (its logits)
        and those whose derivative reads it; the others' forward pass is in place."""
        return [self.net.Z[l] != NULL for l in range(self.net.n_layers)]

    @property
    def updates_in_gemm(self):
        """True when the bound optimizer is plain SGD, applied inside the weight-gradient
        product: training steps then leave the gradient buffer as it was."""
        return self.net.update == UPDATE_IN_GEMM

    cdef Batch _batch(self, X, Y, labels, int loss, Py_ssize_t limit, weights=None,
                      bint targets=True) except *:
        """A batch (X and, with targets, its targets for `loss`, and sample weights or None),
        checked: at most `limit` rows (0: any number)."""
        cdef Batch batch
        batch.n = self._rows(X, Y, labels, loss, limit, targets)
        if isinstance(X, np.ndarray):
            batch.X, batch.indices, batch.indptr = _data(X), NULL, NULL
        else:  # CSR rows, checked by _rows
            batch.X = _data(X.values)
            batch.indices = <int32_t *>_data(X.indices)
            batch.indptr = <int64_t *>_data(X.indptr)
        batch.Y = _data(Y) if Y is not None else NULL
        batch.labels = <int64_t *>_data(labels) if labels is not None else NULL
        batch.weights = NULL
        if weights is not None:
            if not (_is(weights, self._type, 1) and
                    cnp.PyArray_DIM(<cnp.ndarray>weights, 0) == batch.n):
                raise ValueError(f"sample_weight: expected a C-contiguous {self.dtype} array "
                                 f"({batch.n},)")
            batch.weights = _data(weights)
            if not _weights_ok(batch.weights, batch.n, self.net.dtype):
                raise ValueError("sample_weight: expected finite weights >= 0")
        return batch

    cdef Py_ssize_t _rows(self, X, Y, labels, int loss, Py_ssize_t limit, bint targets) except -1:
        """Checks a batch (X and its targets) and returns its number of rows."""
        cdef int L = self.net.n_layers
        if not isinstance(X, np.ndarray):
            n = _csr_checked(X, self._type, self.net.layer[0].n_in)
        elif not (_is(X, self._type, 2) and cnp.PyArray_DIM(<cnp.ndarray>X, 0) >= 1 and
                  cnp.PyArray_DIM(<cnp.ndarray>X, 1) == self.net.layer[0].n_in):
            raise ValueError(f"X: expected a non-empty C-contiguous {self.dtype} array with "
                             f"{self.net.layer[0].n_in} columns, or CSR rows (fastprop.sparse)")
        else:
            n = X.shape[0]
        if limit and n > limit:
            raise ValueError(f"X: expected at most {limit} rows, got {n}")
        if not targets:
            return n
        check_loss(loss)
        cdef fp_loss_info info
        fp_loss_describe(loss, &info)
        cdef int out_act = self.net.layer[L - 1].activation
        if (info.output_activation >= 0 and out_act != info.output_activation) or \
                (info.output_activation < 0 and out_act == FP_SOFTMAX):
            raise ValueError(f"loss: code {loss} does not take an output of activation code "
                             f"{out_act}")
        cdef int n_out = self.net.layer[L - 1].n_out
        if labels is not None:
            if loss != FP_LOSS_SOFTMAX_XENT:
                raise ValueError("labels: only softmax cross-entropy takes integer labels")
            if not (_is(labels, cnp.NPY_INT64, 1) and cnp.PyArray_DIM(<cnp.ndarray>labels, 0) == n):
                raise ValueError(f"labels: expected C-contiguous int64 labels for {n} rows")
            if not _all_below(<int64_t *>_data(labels), n, n_out):
                raise ValueError(f"labels: expected labels in [0, {n_out})")
        elif not (_is(Y, self._type, 2) and cnp.PyArray_DIM(<cnp.ndarray>Y, 0) == n and
                  cnp.PyArray_DIM(<cnp.ndarray>Y, 1) == n_out):
            raise ValueError(f"Y: expected a C-contiguous {self.dtype} array ({n}, {n_out})")
        return n

    cdef bint _intact(self, cnp.ndarray buf, void *expected):
        return (cnp.PyArray_TYPE(buf) == self._type and cnp.PyArray_NDIM(buf) == 1 and
                cnp.PyArray_DIM(buf, 0) == self.net.n_params and cnp.PyArray_DATA(buf) == expected)

    cdef _begin(self, const Batch *batch=NULL):
        """Takes the model's passes for one pass (over `batch`, whose X may be CSR rows): a
        pass started in another thread finishes first (the wait releases the GIL), so passes on
        one model never overlap."""
        self._lock.acquire()  # waits without the GIL
        self.net.csr = batch if batch != NULL and batch.indices != NULL else NULL
        if not (self._intact(self._params, self.net.params) and
                self._intact(self._grads, self.net.grads)):
            self._lock.release()
            raise ValueError("params, grads: a buffer this engine was built on was reshaped, "
                             "resized or retyped; build a new engine")
        self.net.ticks = 0

    cdef _end(self):
        """Ends a pass: the lock released and, if a signal handler raised during it, that
        exception raised now."""
        self.net.csr = NULL
        self._lock.release()
        cdef PyObject *exc_type = self.net.exc_type
        cdef PyObject *exc_value = self.net.exc_value
        cdef PyObject *exc_tb = self.net.exc_tb
        if exc_type != NULL or exc_value != NULL:
            self.net.exc_type = self.net.exc_value = self.net.exc_tb = NULL
            PyErr_Restore(exc_type, exc_value, exc_tb)  # steals the references
            _raise()

    # -----------------------------------------------------------------------------------------
    # The passes. Each runs without the GIL inside fp_pass_begin/end (the fork gate).

    def predict(self, X, out):
        """out = the output layer's activation for X, in chunks of READ_ROWS rows."""
        cdef Batch batch = self._batch(X, None, None, 0, 0, None, False)
        cdef Py_ssize_t n = batch.n
        cdef int n_out = self.net.layer[self.net.n_layers - 1].n_out
        if not _is_shaped(out, self._type, (n, n_out), True):
            raise ValueError(f"out: expected a writable C-contiguous {self.dtype} array "
                             f"({n}, {n_out})")
        if any(np.may_share_memory(out, a) for a in
               ((X,) if batch.indices == NULL else (X.values,)) + (self._params, self._grads)):
            raise ValueError("out: must not share memory with X or the model's buffers")
        cdef char *o = <char *>_data(out)
        self._begin(&batch)
        try:
            with nogil:
                fp_pass_begin()
                _forward_in_chunks(&self.net, &batch, False, 0, o, NULL)
                fp_pass_end()
        finally:
            self._end()
        return out

    def loss(self, X, Y, labels, int loss):
        """(sum over samples of the loss, number correct) for X, in chunks; dropout off. The
        mean is the sum divided by the number of rows."""
        cdef Batch batch = self._batch(X, Y, labels, loss, 0)
        cdef double total
        cdef int64_t n_correct = 0
        self._begin(&batch)
        try:
            with nogil:
                fp_pass_begin()
                total = _forward_in_chunks(&self.net, &batch, True, loss, NULL, &n_correct)
                fp_pass_end()
        finally:
            self._end()
        return total, n_correct

    def gradients(self, X, Y, labels, int loss, weights=None, double penalty=0.0, keep=None):
        """Forward and backward on a batch of any size, dropout off, in chunks of READ_ROWS
        rows whose gradients add up in the gradient buffer; no update. `weights`: sample
        weights; `penalty`: L2 on the weights, penalty / 2 ||W||^2 divided by the sum of the
        weights (or the rows), as scikit-learn's alpha; `keep`: per layer a triple of writable
        arrays (n, n_out) that receive Z, A and the delta dL/dZ (explain). Returns (mean loss,
        number correct)."""
        cdef Batch b = self._batch(X, Y, labels, loss, 0, weights)
        if not (penalty >= 0 and _finite(penalty)):
            raise ValueError(f"penalty: expected a finite number >= 0, got {penalty!r}")
        cdef int L = self.net.n_layers, l
        cdef void **kept = NULL
        if keep is not None:
            keep = list(keep)
            if len(keep) != L:
                raise ValueError(f"keep: expected {L} triples (Z, A, delta), got {len(keep)}")
            for l, arrays in enumerate(keep):
                for arr in arrays:
                    if not _is_shaped(arr, self._type, (b.n, self.net.layer[l].n_out), True):
                        raise ValueError(f"keep[{l}]: expected writable C-contiguous "
                                         f"{self.dtype} arrays ({b.n}, {self.net.layer[l].n_out})")
            kept = <void **>calloc(4 * L, sizeof(void *))
            if kept == NULL:
                raise MemoryError()
            for l in range(L):
                kept[3 * l], kept[3 * l + 1], kept[3 * l + 2] = (
                    _data(keep[l][0]), _data(keep[l][1]), _data(keep[l][2]))
        cdef int64_t n_correct = 0
        cdef double value
        try:
            self._begin(&b)
            try:
                if kept != NULL:
                    for l in range(L):
                        kept[3 * L + l] = self.net.Z[l]  # the layer's own Z, or NULL
                with nogil:
                    fp_pass_begin()
                    if self.net.dtype == FP_FLOAT32:
                        value = _gradients_in_chunks(&self.net, <const float *>b.X,
                                                     <const float *>b.Y, b.labels,
                                                     <const float *>b.weights, b.n, loss,
                                                     penalty, kept, &n_correct)
                    else:
                        value = _gradients_in_chunks(&self.net, <const double *>b.X,
                                                     <const double *>b.Y, b.labels,
                                                     <const double *>b.weights, b.n, loss,
                                                     penalty, kept, &n_correct)
                    fp_pass_end()
            finally:
                self._end()
        finally:
            free(kept)
        return value, n_correct

    def layer_shapes(self):
        return [_Shape(self.net.layer[l].n_in, self.net.layer[l].n_out)
                for l in range(self.net.n_layers)]

    cdef _check_training(self, double lr):
        if self.net.opt_steps == NULL:
            raise ValueError("optimizer: none is bound; call bind_optimizer first")
        if not (lr >= 0 and _finite(lr)):
            raise ValueError(f"lr: expected a finite learning rate >= 0, got {lr!r}")

    def data(self, X, Y, labels, weights, int loss, order=None):
        """Training data checked once, for the passes that take a Data (epoch, epochs, part):
        X, its targets for `loss`, sample weights or None, and the rows' order: None (X's
        order) or a permutation of the rows (int64; copied)."""
        cdef Data d = Data.__new__(Data)
        d.b = self._batch(X, Y, labels, loss, 0, weights)
        d.loss, d.n = loss, d.b.n
        d._refs = (X if d.b.indices == NULL else (X.values, X.indices, X.indptr), Y, labels,
                   weights)
        d.shape = self._shape
        d._order = None
        d.order_ptr = NULL
        if order is not None:
            d.set_order(order)
        return d

    cdef Data _checked(self, Data data, int batch_size):
        if data is None or data.shape != self._shape:
            raise ValueError("data: expected Data made by an engine of this model")
        if not 1 <= batch_size <= self.capacity:
            raise ValueError(f"batch_size: expected 1 to {self.capacity}, got {batch_size}")
        if self.net.X_rows == NULL and data.b.indices == NULL and data.order_ptr != NULL:
            self.net.X_rows = self._buffer((self.capacity, self.net.layer[0].n_in))
        return data

    def epoch(self, Data data, Py_ssize_t lo, Py_ssize_t hi, int batch_size, double lr,
              bint check_params=False):
        """Every step over rows lo to hi of the data's order (or of X) in batches of
        `batch_size` (at most `capacity`), dropout on, with the bound optimizer at `lr`.
        Returns (sum of batch loss times batch size, number correct, the index of the batch at
        which training diverged or -1): it stops at the first batch whose loss is not finite
        (its update is not applied) or, with check_params, after whose update a parameter is
        not."""
        self._check_training(lr)
        self._checked(data, batch_size)
        if not 0 <= lo <= hi <= data.n:
            raise ValueError(f"lo, hi: expected 0 <= lo <= hi <= {data.n}, got {lo}, {hi}")
        cdef Batch b = data.rows(lo if data.order_ptr == NULL else 0, self.net.layer[0].n_in,
                                 self.net.layer[self.net.n_layers - 1].n_out)
        cdef int64_t *o = data.order_ptr + lo if data.order_ptr != NULL else NULL
        cdef int64_t n_correct = 0
        cdef Py_ssize_t diverged = -1
        cdef double total = 0
        self._begin(&b)
        try:
            with nogil:
                fp_pass_begin()
                total = _any_epoch(&self.net, &b, o, hi - lo, batch_size, data.loss, lr,
                                   check_params, &n_correct, &diverged)
                fp_pass_end()
        finally:
            self._end()
        return total, n_correct, diverged

    def epochs(self, Data data, int batch_size, lrs, shuffle_state, losses, corrects, seconds,
               Copies snapshot):
        """len(lrs) epochs in one call, nothing in Python between them: per epoch, the
        `snapshot` is taken, the data's order shuffled in place from shuffle_state ([seed,
        count], uint64, advanced) unless that is None, and the epoch runs at lrs[e]; losses,
        corrects and seconds (one per epoch) are filled. Returns (epochs completed, the diverged
        epoch's bad batch, or -2 if only its parameters went non-finite, or -1). Interrupted,
        the model goes back to the start of the epoch under way, whose loss stays as it was."""
        self._check_training(0.0)
        self._checked(data, batch_size)
        cdef Py_ssize_t n_epochs = len(lrs), e, done, diverged = -1
        cdef double *rates = <double *>_vector(lrs, "lrs", cnp.NPY_FLOAT64, n_epochs, False)
        cdef double *out_loss = <double *>_vector(losses, "losses", cnp.NPY_FLOAT64, n_epochs,
                                                  True)
        cdef int64_t *out_correct = <int64_t *>_vector(corrects, "corrects", cnp.NPY_INT64,
                                                       n_epochs, True)
        cdef double *out_seconds = <double *>_vector(seconds, "seconds", cnp.NPY_FLOAT64,
                                                     n_epochs, True)
        for e in range(n_epochs):
            if not (rates[e] >= 0 and _finite(rates[e])):
                raise ValueError(f"lrs: expected finite learning rates >= 0, got {rates[e]!r}")
        cdef uint64_t *shuffle = NULL
        if shuffle_state is not None:
            if data.order_ptr == NULL:
                raise ValueError("shuffle_state: this data takes the rows in X's order")
            if not _is_shaped(shuffle_state, cnp.NPY_UINT64, (2,), True):
                raise ValueError("shuffle_state: expected a writable C-contiguous uint64 array "
                                 "[seed, count]")
            shuffle = <uint64_t *>_data(shuffle_state)
        if snapshot is None:
            raise TypeError("snapshot: expected a Copies")
        cdef Batch b = data.b
        self._begin(&b)
        try:
            with nogil:
                fp_pass_begin()
                done = _epochs(&self.net, &b, data.order_ptr, data.n, batch_size, data.loss,
                               rates, n_epochs, shuffle, snapshot.copies, snapshot.n, out_loss,
                               out_correct, out_seconds, &diverged)
                fp_pass_end()
        finally:
            self._end()
        return done, diverged

    def part(self, Data data, Py_ssize_t lo, int rows, int part_lo, int part_hi,
             bint penalty):
        """One rank's part of a data-parallel step: of the batch of `rows` rows from position
        `lo` of the data's order (or of X), the rows part_lo to part_hi, their share of the
        batch's gradient into the gradient buffer, dropout on, no update (see _part); with
        `penalty`, the part carries the batch's L2 term. Returns (its share of the batch's mean
        loss, its number correct)."""
        self._check_training(0.0)
        self._checked(data, 1)
        if not (0 <= lo and 1 <= rows and lo + rows <= data.n and 0 <= part_lo <= part_hi
                <= rows and part_hi - part_lo <= self.capacity):
            raise ValueError(f"part: the rows {part_lo}:{part_hi} of the batch {lo}:"
                             f"{lo + rows} are outside the {data.n} rows, or more than the "
                             f"engine's {self.capacity}")
        cdef int64_t n_correct = 0
        cdef double value, total
        cdef Batch *b = &data.b
        self._begin(b)
        try:
            with nogil:
                fp_pass_begin()
                if self.net.dtype == FP_FLOAT32:
                    total = _weight_total(<const float *>b.weights, data.order_ptr, lo, rows)
                    value = _part(&self.net, <const float *>b.X, <const float *>b.Y, b.labels,
                                  <const float *>b.weights, data.order_ptr, lo, rows, part_lo,
                                  part_hi, total, data.loss,
                                  self.net.penalty / total if penalty else 0.0, True, False,
                                  &n_correct)
                else:
                    total = _weight_total(<const double *>b.weights, data.order_ptr, lo, rows)
                    value = _part(&self.net, <const double *>b.X, <const double *>b.Y,
                                  b.labels, <const double *>b.weights, data.order_ptr, lo, rows,
                                  part_lo, part_hi, total, data.loss,
                                  self.net.penalty / total if penalty else 0.0, True, False,
                                  &n_correct)
                fp_pass_end()
        finally:
            self._end()
        return value, n_correct

    def params_finite(self):
        """True if every parameter is finite."""
        cdef bint ok
        with nogil:
            ok = _params_finite(&self.net)
        return ok

    def update(self, double lr, bint count_step=False):
        """One step of the bound optimizer over the gradient buffer as it stands (plain SGD
        included: here it reads the buffer); with count_step, a training step is also counted
        (dropout masks move on), as at the end of a data-parallel step."""
        self._check_training(lr)
        self._begin()
        try:
            with nogil:
                fp_pass_begin()
                _optimizer_pass(&self.net, lr)
                if count_step:
                    self.net.dropout[1] += 1
                fp_pass_end()
        finally:
            self._end()


cdef class Data:
    """Data checked once by Engine.data for the passes that train on it: X, its targets for
    one loss, sample weights, and the rows' order, which it owns (only shuffle and set_order
    change it, so that a pass never reads a row index it did not check)."""
    cdef Batch b
    cdef readonly int loss
    cdef readonly Py_ssize_t n
    cdef int64_t *order_ptr
    cdef object _order, _refs
    cdef object shape  # the engine's (dtype, n_in, n_out, output activation) it was checked for

    @property
    def order(self):
        """A copy of the rows' order (None: X's order)."""
        return None if self._order is None else self._order.copy()

    def set_order(self, order):
        """The rows' order from now on: a permutation of the rows (int64; copied)."""
        if not (isinstance(order, np.ndarray) and order.dtype == np.int64 and order.ndim == 1
                and order.shape[0] == self.n):
            raise ValueError(f"order: expected an int64 permutation of the {self.n} rows")
        if not (_all_below(<int64_t *>_data(np.ascontiguousarray(order)), self.n, self.n) and
                np.array_equal(np.bincount(order, minlength=self.n), np.ones(self.n, np.int64))):
            raise ValueError("order: expected every row exactly once")
        if self._order is None:
            self._order = np.array(order, dtype=np.int64, order="C")
            self.order_ptr = <int64_t *>_data(self._order)
        else:
            self._order[...] = order

    def shuffle(self, uint64_t seed, uint64_t count):
        """The rows' order permuted in place by the counter-based generator (seed, count), as
        one epoch of fit shuffles it."""
        if self.order_ptr == NULL:
            raise ValueError("shuffle: this data takes the rows in X's order")
        with nogil:
            fp_shuffle(self.order_ptr, self.n, seed, count)

    cdef Batch rows(self, Py_ssize_t lo, int n_in, int n_y):
        """The batch from row lo of X on (its targets and weights alike)."""
        cdef Batch b = self.b
        cdef size_t size = sizeof(float) if b.X != NULL and self.shape[0] == FP_FLOAT32 \
            else sizeof(double)
        if b.indices != NULL:  # CSR: row lo's pointer on
            b.indptr = b.indptr + lo
        else:
            b.X = <char *>b.X + lo * n_in * size
        if b.Y != NULL:
            b.Y = <char *>b.Y + lo * n_y * size
        if b.labels != NULL:
            b.labels = b.labels + lo
        if b.weights != NULL:
            b.weights = <char *>b.weights + lo * size
        b.n -= lo
        return b


def _before_fork():
    with nogil:
        fp_fork_prepare()


if hasattr(os, "register_at_fork"):  # a fork waits for the running passes to stand between steps
    os.register_at_fork(before=_before_fork, after_in_parent=lambda: fp_fork_done(0),
                        after_in_child=lambda: fp_fork_done(1))


class _Shape:
    __slots__ = ("n_in", "n_out")

    def __init__(self, n_in, n_out):
        self.n_in, self.n_out = n_in, n_out

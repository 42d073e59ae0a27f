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
                                FP_FLOAT32, FP_FLOAT64, FP_SOFTMAX, FP_LOSS_SOFTMAX_XENT,
                                FP_OPT_SGD)

cnp.import_array()

cdef extern from "Python.h":
    int _check_signals "PyErr_CheckSignals"() noexcept  # -1 with the handler's exception set


cdef int _raise() except -1:
    """Raises the exception already set (returns -1 for Cython to propagate it)."""
    return -1

cdef enum Update:
    NO_UPDATE = 0           # gradients into the gradient buffer
    UPDATE_IN_GEMM = 1      # plain SGD inside the weight-gradient product
    UPDATE_BY_OPTIMIZER = 2 # gradients into the buffer, then the optimizer's pass



cdef struct LayerDesc:
    int n_in
    int n_out
    int activation
    double param              # the activation's parameter (leaky_relu's slope, elu's alpha)
    double dropout_rate       # of the Dropout after this layer; 0: none
    Py_ssize_t w_offset       # W at params + w_offset, b right after it


cdef struct Net:
    int dtype
    int n_layers
    LayerDesc *layer
    int capacity
    void *params
    void *grads
    Py_ssize_t n_params
    void **A                  # per layer (capacity, n_out): activations
    void **Z                  # per layer (capacity, n_out): pre-activations, kept for the output
                              # (its logits) and for layers whose derivative reads them; else NULL
    void **dZ                 # per layer (capacity, n_out): deltas dL/dZ
    void **mask               # per layer followed by dropout: its mask, else NULL
    void **dropped            # per layer followed by dropout: A * mask, else NULL
    void *bias_grad           # the bias gradient of one layer, when the update is in the GEMM
    void *X_rows              # a gathered batch (capacity, n_in), made for the first dense
                              # data whose rows are taken in an order
    void *Y_rows              # its gathered targets (capacity, n_out)
    int64_t *label_rows       # or its gathered labels (capacity,)
    void *sample_rows         # its gathered sample weights (capacity,)
    void *weight_rows         # the same, normalized to sum to the batch size (capacity,)
    double penalty            # L2 on the weights (not biases): penalty / 2 ||W||^2 / sum of w
    int update
    fp_optimizer opt
    void *state0              # the bound optimizer's state buffers (momentum, moments), or NULL
    void *state1
    int64_t *opt_steps        # its step count (one int64 in the optimizer state)
    uint64_t *dropout         # the model's [seed, training steps taken]
    int64_t row_work          # multiply-adds of one row's forward pass
    int64_t ticks             # work done since the clock was last read (multiply-adds)
    double next_check         # when Python's signal handlers run next (monotonic seconds)
    PyObject *exc_type        # what a signal handler raised, until the pass returns
    PyObject *exc_value
    PyObject *exc_tb
    const Batch *csr          # during a pass over CSR rows: the batch they come from; else NULL
    const int64_t *csr_ids    # the step's rows of it (NULL: csr_first, csr_first + 1, ...)
    Py_ssize_t csr_first


cdef struct Batch:          # a checked batch: its rows and targets
    void *X                   # dense rows (n, n_in), or a CSR matrix's stored values
    const int32_t *indices    # CSR: the values' columns; NULL for dense X
    const int64_t *indptr     # CSR: row r's values are [indptr[r], indptr[r + 1])
    void *Y                   # targets, or NULL with labels
    int64_t *labels           # integer labels (softmax cross-entropy), or NULL
    void *weights             # per-sample weights, or NULL
    Py_ssize_t n


cdef void _forward(Net *net, const floating *X, int n, bint training,
                   Py_ssize_t row0) noexcept nogil:
    """A_l = f(A_{l-1} W_l + b_l) for every layer; inverted dropout after a layer when training,
    its mask that of rows row0, row0 + 1, ... of the step's batch (row0 > 0: a part of it)."""
    cdef int l, L = net.n_layers
    cdef LayerDesc *d
    cdef floating *params = <floating *>net.params
    cdef const floating *A_prev = X
    cdef floating *Z
    cdef floating *W
    for l in range(L):
        d = &net.layer[l]
        W = params + d.w_offset
        if l == 0 and net.csr != NULL:  # CSR rows: the stored values' rows of W, summed
            Z = <floating *>(net.Z[0] if net.Z[0] != NULL else net.A[0])
            fp_csr_product(net.dtype, net.csr.X, net.csr.indices, net.csr.indptr, net.csr_ids,
                           net.csr_first, n, W, d.n_out, Z)
            fp_bias_activation(net.dtype, Z, net.A[0], W + <Py_ssize_t>d.n_in * d.n_out, n,
                               d.n_out, d.activation, d.param)
        else:
            forward_layer(A_prev, d.n_in, False, W, d.n_out, False,
                          W + <Py_ssize_t>d.n_in * d.n_out, <floating *>net.Z[l],
                          <floating *>net.A[l], n, d.n_in, d.n_out, d.activation, d.param)
        A_prev = <floating *>net.A[l]
        if training and d.dropout_rate > 0:
            # a part starting at row row0 draws its mask from element row0 * n_out on
            fp_dropout(net.dtype, A_prev, net.mask[l], net.dropped[l], <Py_ssize_t>n * d.n_out,
                       fp_dropout_key_at(net.dropout[0], <int64_t>net.dropout[1], l,
                                         row0 * d.n_out), d.dropout_rate)
            A_prev = <floating *>net.dropped[l]


cdef double _backward(Net *net, const floating *X, const floating *Y, const int64_t *labels,
                      const floating *w, int n, int loss, bint training, int update, double lr,
                      double penalty, double scale, bint accumulate,
                      int64_t *n_correct) noexcept nogil:
    """The loss of the last forward pass, and backward through every layer: the deltas, and the
    weight gradients into the gradient buffer (added to it with `accumulate`) or
    (UPDATE_IN_GEMM) straight into W and b. `scale` multiplies the loss and its gradient (1: the
    batch's mean; a part of a batch passes its share); `penalty`: the coefficient of the L2 term
    added to the loss (penalty / 2 ||W||^2) and to the weight gradients (penalty W), 0 for
    none."""
    cdef int l, L = net.n_layers, dt = net.dtype
    cdef LayerDesc *d
    cdef LayerDesc *p
    cdef LayerDesc *out = &net.layer[L - 1]
    cdef floating *params = <floating *>net.params
    cdef floating *grads = <floating *>net.grads
    cdef floating *W
    cdef floating *G
    cdef floating *A_prev
    cdef floating *dZ_out
    cdef Py_ssize_t i
    cdef bint dropped_prev
    cdef double value
    fp_loss_gradient(dt, loss, net.Z[L - 1], net.A[L - 1], Y, labels, w, net.dZ[L - 1], n,
                     out.n_out, out.activation, out.param, &value, n_correct)
    if scale != 1:
        value *= scale
        dZ_out = <floating *>net.dZ[L - 1]
        for i in range(<Py_ssize_t>n * out.n_out):
            dZ_out[i] *= <floating>scale
    if penalty > 0:  # scikit-learn's alpha: alpha / 2 ||W||^2 / (batch size or sum of weights)
        for l in range(1 if net.csr != NULL else 0, L):  # CSR rows: layer 1's in its gradient
            d = &net.layer[l]
            value += 0.5 * penalty * sum_of_squares(<Py_ssize_t>d.n_in * d.n_out,
                                                    params + d.w_offset)
    if update != NO_UPDATE and not _finite(value):
        return value  # a diverged batch updates nothing
    for l in range(L - 1, -1, -1):
        d = &net.layer[l]
        W = params + d.w_offset
        dropped_prev = training and l > 0 and net.layer[l - 1].dropout_rate > 0
        if l == 0:
            A_prev = <floating *>X
        else:
            A_prev = <floating *>(net.dropped[l - 1] if dropped_prev else net.A[l - 1])
        if l > 0:  # dZ_{l-1} = (dZ_l W_l^T) [* mask] * f'(.), with W_l before its update
            p = &net.layer[l - 1]
            delta_layer(<floating *>net.dZ[l], d.n_out, False, W, d.n_out, False,
                        <floating *>net.A[l - 1], <floating *>net.Z[l - 1],
                        <floating *>net.mask[l - 1] if dropped_prev else NULL,
                        <floating *>net.dZ[l - 1], n, d.n_in, d.n_out, p.activation, p.param)
        if l == 0 and net.csr != NULL:  # (with the L2 term: it starts the gradient)
            value += _csr_weight_gradient(net, d, W, grads + d.w_offset, n, update, lr, penalty,
                                          accumulate)
        elif update == UPDATE_IN_GEMM:  # W += (-lr) A_prev^T dZ; b -= lr sum(dZ)
            weight_gradient(A_prev, d.n_in, False, <floating *>net.dZ[l], W,
                            <floating *>net.bias_grad, n, d.n_in, d.n_out, <floating>(-lr),
                            <floating>1, False)
            fp_sgd_update(dt, W + <Py_ssize_t>d.n_in * d.n_out, net.bias_grad, d.n_out, lr)
        else:
            G = grads + d.w_offset
            weight_gradient(A_prev, d.n_in, False, <floating *>net.dZ[l], G,
                            G + <Py_ssize_t>d.n_in * d.n_out, n, d.n_in, d.n_out, <floating>1,
                            <floating>accumulate, accumulate)
        # dW += penalty W, with W before its update (CSR rows: done above)
        if penalty > 0 and update != UPDATE_IN_GEMM and not (l == 0 and net.csr != NULL):
            axpy(<Py_ssize_t>d.n_in * d.n_out, <floating>penalty, W, grads + d.w_offset)
    return value


cdef double _csr_weight_gradient(Net *net, LayerDesc *d, floating *W, floating *G, int n,
                                 int update, double lr, double penalty,
                                 bint accumulate) noexcept nogil:
    """The first layer's weight gradient over CSR rows, X^T dZ (+ penalty W): written (or
    with UPDATE_IN_GEMM, applied to W and b by plain SGD) in the rows of W that the batch's
    values name; the other rows of the gradient are zero (or the L2 term's alone). Returns the
    layer's L2 loss term, penalty / 2 ||W||^2, from the same pass over W."""
    cdef const Batch *b = net.csr
    cdef Py_ssize_t size = <Py_ssize_t>d.n_in * d.n_out
    cdef double squares = 0
    if update == UPDATE_IN_GEMM:  # W[j] -= lr x_ij dZ_i: only the rows the batch touches
        fp_csr_scatter(net.dtype, b.X, b.indices, b.indptr, net.csr_ids, net.csr_first, n,
                       net.dZ[0], d.n_out, W, -lr)
        fp_column_sum(net.dtype, net.dZ[0], n, d.n_out, net.bias_grad, False)
        fp_sgd_update(net.dtype, W + size, net.bias_grad, d.n_out, lr)
        return 0.0
    if not accumulate:  # one pass: the L2 term (and ||W||^2), or zeros
        if penalty > 0:
            fp_scale(net.dtype, G, W, penalty, size, &squares)
        else:
            memset(G, 0, size * sizeof(floating))
    elif penalty > 0:
        axpy(size, <floating>penalty, W, G)
        squares = sum_of_squares(size, W)
    fp_csr_scatter(net.dtype, b.X, b.indices, b.indptr, net.csr_ids, net.csr_first, n,
                   net.dZ[0], d.n_out, G, 1.0)
    fp_column_sum(net.dtype, net.dZ[0], n, d.n_out, G + size, accumulate)
    return 0.5 * penalty * squares


cdef void _optimizer_pass(Net *net, double lr) noexcept nogil:
    net.opt.lr = lr
    net.opt_steps[0] += 1
    fp_optimizer_step(net.dtype, &net.opt, net.params, net.grads, net.state0, net.state1, net.n_params,
                      net.opt_steps[0])


cdef double _step(Net *net, const floating *X, const floating *Y, const int64_t *labels,
                  const floating *weights, int n, int loss, bint training, double lr,
                  int64_t *n_correct) noexcept nogil:
    """Forward and backward on one batch. Training: dropout on, the bound optimizer's update,
    and the step counted; otherwise dropout off and the whole gradient into the buffer.
    `weights` (or NULL): the batch's sample weights, normalized here to sum to n."""
    cdef double value, w_sum = n
    cdef floating *w = NULL
    cdef int i
    if weights != NULL:
        w = <floating *>net.weight_rows
        w_sum = 0
        for i in range(n):
            w_sum += <double>weights[i]
        for i in range(n):
            w[i] = <floating>(<double>weights[i] * n / w_sum) if w_sum > 0 else <floating>0
        if not w_sum > 0:
            w_sum = 1  # an all-zero batch: no loss, no gradient, no division by zero
    _forward(net, X, n, training, 0)
    value = _backward(net, X, Y, labels, w, n, loss, training,
                      net.update if training else NO_UPDATE, lr,
                      net.penalty / w_sum if training else 0.0, 1.0, False, n_correct)
    if training and _finite(value):
        if net.update == UPDATE_BY_OPTIMIZER:
            _optimizer_pass(net, lr)
        else:  # the update ran inside the weight-gradient products
            net.opt_steps[0] += 1
        net.dropout[1] += 1
    return value


cdef double _weight_total(const floating *weights, const int64_t *order, Py_ssize_t lo,
                          Py_ssize_t rows) noexcept nogil:
    """The sum of the sample weights of rows lo to lo + rows (in `order`, or in X's order), or
    their number without weights; 1 for an all-zero batch (no loss, no gradient, no division by
    zero)."""
    cdef Py_ssize_t i
    cdef double total = 0
    if weights == NULL:
        return <double>rows
    for i in range(rows):
        total += <double>weights[order[lo + i] if order != NULL else lo + i]
    return total if total > 0 else 1.0


cdef double _part(Net *net, const floating *X, const floating *Y, const int64_t *labels,
                  const floating *weights, const int64_t *order, Py_ssize_t lo, Py_ssize_t rows,
                  Py_ssize_t part_lo, Py_ssize_t part_hi, double total, int loss,
                  double penalty, bint training, bint accumulate,
                  int64_t *n_correct) noexcept nogil:
    """A part of a batch: of the batch of `rows` rows starting at `lo` (in `order`, or in X's
    order), whose sample weights sum to `total` (or which has `total` rows), the rows part_lo
    to part_hi: their gradient into the gradient buffer (added to it with `accumulate`), scaled
    by their share of the batch, so that the parts' gradients sum to the whole batch's; the loss
    returned is likewise the part's share. `penalty`: the L2 coefficient this part carries (one
    part of a batch carries it). Training: dropout on, each row's mask that of the same row in
    the whole batch. No update, and the step is not counted. Data-parallel steps are such parts
    (one per rank), and so are the chunks of a large gradient pass."""
    cdef Py_ssize_t i, n = part_hi - part_lo
    cdef int n_in = net.layer[0].n_in, n_y = net.layer[net.n_layers - 1].n_out
    cdef double value
    cdef const floating *Xp
    cdef const floating *Yp = NULL
    cdef const int64_t *Lp = NULL
    cdef const floating *Wp = NULL
    cdef floating *w = NULL
    if n == 0:  # more parts than rows: this one adds nothing
        if not accumulate:
            memset(net.grads, 0, <size_t>net.n_params * sizeof(floating))
        return 0.0
    _csr_rows(net, order + lo + part_lo if order != NULL else NULL, lo + part_lo)
    if order != NULL:
        _gather(net, X, Y, labels, weights, order + lo + part_lo, <int>n)
        Xp = <floating *>net.X_rows
        Yp = <floating *>net.Y_rows if Y != NULL else NULL
        Lp = net.label_rows if labels != NULL else NULL
        Wp = <floating *>net.sample_rows if weights != NULL else NULL
    else:
        Xp = X + (lo + part_lo) * n_in if net.csr == NULL else NULL
        Yp = Y + (lo + part_lo) * n_y if Y != NULL else NULL
        Lp = labels + lo + part_lo if labels != NULL else NULL
        Wp = weights + lo + part_lo if weights != NULL else NULL
    if Wp != NULL:  # normalized to sum to n over the part as its share of the batch's sum
        w = <floating *>net.weight_rows
        for i in range(n):
            w[i] = <floating>(<double>Wp[i] * n / total)
    _forward(net, Xp, <int>n, training, part_lo)
    value = _backward(net, Xp, Yp, Lp, w, <int>n, loss, training, NO_UPDATE, 0.0, penalty,
                      1.0 if w != NULL else <double>n / rows, accumulate, n_correct)
    if not _finite(value):  # the sum of the parts tells every rank
        (<floating *>net.grads)[0] = <floating>(value - value)  # NaN
    return value


cdef inline void _csr_rows(Net *net, const int64_t *ids, Py_ssize_t first) noexcept nogil:
    """The next step's rows of CSR X: ids[0..n), or first, first + 1, ..."""
    net.csr_ids, net.csr_first = ids, first


cdef void _gather(Net *net, const floating *X, const floating *Y, const int64_t *labels,
                  const floating *weights, const int64_t *rows, int n) noexcept nogil:
    """Copies rows rows[0..n) of X (unless CSR: its rows are read where they are) and of its
    targets (and sample weights) into the workspace: X_rows, Y_rows or label_rows,
    sample_rows."""
    cdef int i, n_in = net.layer[0].n_in, n_y = net.layer[net.n_layers - 1].n_out
    cdef Py_ssize_t r
    cdef floating *X_rows = <floating *>net.X_rows
    cdef floating *Y_rows = <floating *>net.Y_rows
    cdef floating *W_rows = <floating *>net.sample_rows
    cdef size_t x_row = n_in * sizeof(floating), y_row = n_y * sizeof(floating)
    for i in range(n):
        r = rows[i]
        if net.csr == NULL:
            memcpy(X_rows + i * n_in, X + r * n_in, x_row)
        if Y != NULL:
            memcpy(Y_rows + i * n_y, Y + r * n_y, y_row)
        else:
            net.label_rows[i] = labels[r]
        if weights != NULL:
            W_rows[i] = weights[r]


cdef double _epoch(Net *net, const floating *X, const floating *Y, const int64_t *labels,
                   const floating *weights, const int64_t *order, Py_ssize_t n, int batch_size,
                   int loss, double lr,
                   bint check_params, int64_t *n_correct, Py_ssize_t *diverged) noexcept nogil:
    """Every batch of one epoch; returns the sum over batches of (batch loss * batch size).
    With `order`, batch rows are gathered into the workspace; without it, read in place. Stops
    at the first batch whose loss is not finite (or, with check_params, after which a parameter
    is not), and sets *diverged to its index (else -1)."""
    cdef Py_ssize_t lo = 0, batch = 0
    cdef double value
    cdef int bs
    cdef int n_in = net.layer[0].n_in, n_y = net.layer[net.n_layers - 1].n_out
    cdef double total = 0
    while lo < n:
        bs = <int>(batch_size if n - lo > batch_size else n - lo)
        _csr_rows(net, order + lo if order != NULL else NULL, lo)
        if order == NULL:
            value = _step(net, X + lo * n_in if net.csr == NULL else NULL, Y + lo * n_y if Y != NULL else NULL,
                          labels + lo if labels != NULL else NULL,
                          weights + lo if weights != NULL else NULL, bs, loss, True, lr,
                          n_correct)
        else:
            _gather(net, X, Y, labels, weights, order + lo, bs)
            value = _step(net, <floating *>net.X_rows,
                          <floating *>net.Y_rows if Y != NULL else NULL,
                          net.label_rows if labels != NULL else NULL,
                          <floating *>net.sample_rows if weights != NULL else NULL, bs, loss,
                          True, lr, n_correct)
        if not _finite(value) or (check_params and not _params_finite(net)):
            diverged[0] = batch
            return total
        total += bs * value
        lo += bs
        batch += 1
        if _interrupted(net, bs):  # between two steps: the model is whole
            break
    diverged[0] = -1
    return total


cdef double _any_epoch(Net *net, const Batch *b, const int64_t *order, Py_ssize_t n,
                       int batch_size, int loss, double lr, bint check_params,
                       int64_t *n_correct, Py_ssize_t *diverged) noexcept nogil:
    if net.dtype == FP_FLOAT32:
        return _epoch(net, <const float *>b.X, <const float *>b.Y, b.labels,
                      <const float *>b.weights, order, n, batch_size, loss, lr, check_params,
                      n_correct, diverged)
    return _epoch(net, <const double *>b.X, <const double *>b.Y, b.labels,
                  <const double *>b.weights, order, n, batch_size, loss, lr, check_params,
                  n_correct, diverged)


cdef inline double _now() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec + ts.tv_nsec * 1e-9


cdef Py_ssize_t _epochs(Net *net, const Batch *b, int64_t *order, Py_ssize_t n,
                        int batch_size, int loss, const double *lrs, Py_ssize_t n_epochs,
                        uint64_t *shuffle, const Copy *copies, int n_copies, double *losses,
                        int64_t *corrects, double *seconds, Py_ssize_t *diverged) noexcept nogil:
    """Whole epochs in one call: per epoch, the snapshot copied, the rows shuffled in place
    (counter-based, from shuffle = [seed, count]), every batch trained at lrs[e], the loss,
    number correct and seconds recorded. Stops at an epoch whose loss or parameters are not
    finite (*diverged: its bad batch, or -2 if only the parameters tell); returns the number of
    epochs completed."""
    cdef Py_ssize_t e, k
    cdef int64_t n_correct
    cdef double start, total
    diverged[0] = -1
    for e in range(n_epochs):
        for k in range(n_copies):
            memcpy(copies[k].saved, copies[k].live, copies[k].size)
        start = _now()  # the epoch's time, as fit's per-epoch loop counts it: shuffle and steps
        if shuffle != NULL:
            fp_shuffle(order, n, shuffle[0], shuffle[1])
            shuffle[1] += 1
        n_correct = 0
        total = _any_epoch(net, b, order, n, batch_size, loss, lrs[e], False, &n_correct,
                           diverged)
        seconds[e] = _now() - start
        if net.exc_value != NULL or net.exc_type != NULL:  # interrupted: back to its start
            for k in range(n_copies):
                memcpy(copies[k].live, copies[k].saved, copies[k].size)
            return e
        if diverged[0] >= 0:
            return e
        if not _params_finite(net):
            diverged[0] = -2
            return e
        losses[e] = total / n
        corrects[e] = n_correct
    return n_epochs


cdef bint _interrupted(Net *net, Py_ssize_t rows) noexcept nogil:
    """Between two steps or chunks (of `rows` rows): parks while a fork is pending and, about
    every 50 ms of work, runs Python's signal handlers; True when one raised (its exception is
    kept in net until the pass returns): the pass stops here."""
    cdef double now
    if fp_fork_pending():
        fp_park()
    net.ticks += rows * net.row_work
    if net.ticks < 1000000:  # a clock read every million multiply-adds at most
        return False
    net.ticks = 0
    now = _now()
    if now < net.next_check:
        return False
    net.next_check = now + 0.05
    with gil:
        if _check_signals() != 0:
            PyErr_Fetch(&net.exc_type, &net.exc_value, &net.exc_tb)
            return True
    return False


cdef inline bint _finite(double x) noexcept nogil:
    return x - x == 0  # false for NaN and +-inf


cdef inline bint _params_finite(Net *net) noexcept nogil:
    """True if every parameter is finite."""
    cdef int finite = 0
    fp_all_finite(net.dtype, net.params, net.n_params, &finite)
    return finite


# Reading passes run in chunks of this many rows (or the capacity, if smaller): a row goes
# through the same products whatever the engine's history, and the workspace stays bounded.
READ_ROWS = 1024


cdef double _forward_in_chunks(Net *net, const Batch *batch, bint with_loss, int loss, char *out,
                               int64_t *n_correct) noexcept nogil:
    """Forward over a batch of any size, READ_ROWS rows at a time, dropout off: copies the
    output into `out` (unless NULL) and, with_loss, returns the sum over rows of the loss."""
    cdef int L = net.n_layers, n_in = net.layer[0].n_in, n_out = net.layer[L - 1].n_out
    cdef size_t size = sizeof(float) if net.dtype == FP_FLOAT32 else sizeof(double)
    cdef const char *x = <const char *>batch.X
    cdef const char *y = <const char *>batch.Y
    cdef const char *xs
    cdef Py_ssize_t lo = 0, rows = 0, chunk = min(net.capacity, 1024)
    cdef double total = 0, value
    while lo < batch.n and not (lo > 0 and _interrupted(net, rows)):
        rows = min(batch.n - lo, chunk)
        _csr_rows(net, NULL, lo)
        xs = x + lo * n_in * size if net.csr == NULL else NULL  # CSR rows are read in place
        if net.dtype == FP_FLOAT32:
            _forward(net, <const float *>xs, <int>rows, False, 0)
        else:
            _forward(net, <const double *>xs, <int>rows, False, 0)
        if out != NULL:
            memcpy(out + lo * n_out * size, net.A[L - 1], rows * n_out * size)
        if with_loss:
            fp_loss_gradient(net.dtype, loss, net.Z[L - 1], net.A[L - 1],
                             y + lo * n_out * size if y else NULL,
                             batch.labels + lo if batch.labels else NULL, NULL, NULL, rows, n_out,
                             net.layer[L - 1].activation, net.layer[L - 1].param, &value,
                             n_correct)
            total += rows * value
        lo += rows
    return total


cdef double _gradients_in_chunks(Net *net, const floating *X, const floating *Y,
                                 const int64_t *labels, const floating *weights, Py_ssize_t n,
                                 int loss, double penalty, void **keep,
                                 int64_t *n_correct) noexcept nogil:
    """The mean loss of the whole batch (plus penalty / 2 ||W||^2 / its sum of weights) and its
    gradient in the gradient buffer, READ_ROWS rows at a time, dropout off: each chunk adds its
    share. `keep` (or NULL): per layer, arrays (n, n_out) for Z, A and the delta, filled as the
    chunks go (a layer that keeps no Z of its own writes it there directly)."""
    cdef int l, L = net.n_layers
    cdef Py_ssize_t lo = 0, rows = 0, chunk = min(net.capacity, 1024), width
    cdef double total = _weight_total(weights, NULL, 0, n), value = 0
    cdef bint own_z
    while lo < n and not (lo > 0 and _interrupted(net, rows)):
        rows = min(n - lo, chunk)
        if keep != NULL:
            for l in range(L):
                if keep[3 * L + l] == NULL:  # no Z of its own: written into the kept array
                    net.Z[l] = <floating *>keep[3 * l] + lo * net.layer[l].n_out
        value += _part(net, X, Y, labels, weights, NULL, 0, n, lo, lo + rows, total, loss,
                       penalty / total if lo == 0 else 0.0, False, lo > 0, n_correct)
        if keep != NULL:
            for l in range(L):
                width = net.layer[l].n_out
                if keep[3 * L + l] != NULL:
                    memcpy(<floating *>keep[3 * l] + lo * width, net.Z[l],
                           rows * width * sizeof(floating))
                memcpy(<floating *>keep[3 * l + 1] + lo * width, net.A[l],
                       rows * width * sizeof(floating))
                memcpy(<floating *>keep[3 * l + 2] + lo * width, net.dZ[l],
                       rows * width * sizeof(floating))
        lo += rows
    if keep != NULL:
        for l in range(L):
            if keep[3 * L + l] == NULL:
                net.Z[l] = NULL
    return value


cdef bint _all_below(const int64_t *values, Py_ssize_t n, int64_t high) noexcept nogil:
    """True if every value is in [0, high)."""
    cdef Py_ssize_t i
    cdef bint ok = True
    for i in range(n):
        ok &= (values[i] >= 0) & (values[i] < high)
    return ok


cdef int64_t *_order(order, Py_ssize_t n, Py_ssize_t length, bint writable) except? NULL:
    """The row order array (int64 indices into n rows; `length` of them unless -1; writable when
    it is shuffled in place), checked; NULL for None."""
    if order is None:
        return NULL
    if not (isinstance(order, np.ndarray) and order.dtype == np.int64 and order.ndim == 1 and
            order.flags.c_contiguous and (order.flags.writeable or not writable) and
            (length < 0 or order.shape[0] == length)):
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


cdef void *_vector(arr, str name, dtype, Py_ssize_t n, bint writable) except? NULL:
    """The data of a C-contiguous 1-D array of `dtype` and length n (writable if asked)."""
    if not (isinstance(arr, np.ndarray) and (<cnp.ndarray>arr).ndim == 1 and
            arr.shape[0] == n and arr.dtype == dtype and arr.flags.c_contiguous and
            (arr.flags.writeable or not writable)):
        raise ValueError(f"{name}: expected a C-contiguous{' writable' if writable else ''} "
                         f"{np.dtype(dtype)} array of {n}")
    return _data(arr)


cdef Py_ssize_t _csr_checked(X, dtype, int n_in) except -1:
    """The number of rows of CSR rows X (fastprop.sparse.CSR) of `dtype` with n_in columns,
    every array and index checked: the passes read only where it points."""
    try:
        values, indices, indptr, shape = X.values, X.indices, X.indptr, X.shape
    except AttributeError:
        raise ValueError(f"X: expected a C-contiguous {np.dtype(dtype)} array with {n_in} "
                         f"columns, or CSR rows (fastprop.sparse), got {type(X).__name__}") \
            from None
    n = shape[0]
    if not (1 <= n and shape[1] == n_in):
        raise ValueError(f"X: expected CSR rows with {n_in} columns, got shape {shape}")
    _vector(indptr, "X.indptr", np.int64, n + 1, False)
    cdef const int64_t *ptr = <int64_t *>_data(indptr)
    cdef Py_ssize_t stored = ptr[n]
    _vector(values, "X.values", dtype, stored, False)
    _vector(indices, "X.indices", np.int32, stored, False)
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
    cdef object _lock

    def __cinit__(self, layers, params, grads, int capacity, dropout_state, lock=None):
        self.net.layer = NULL
        self.net.A = self.net.Z = self.net.dZ = self.net.mask = self.net.dropped = NULL
        layers = list(layers)
        cdef int L = len(layers), l
        if L < 1:
            raise ValueError("layers: expected at least one layer")
        for name, buf in (("params", params), ("grads", grads)):
            if not (isinstance(buf, np.ndarray) and buf.ndim == 1 and buf.flags.c_contiguous
                    and buf.flags.writeable and buf.dtype in (np.float32, np.float64)):
                raise ValueError(f"{name}: expected a writable C-contiguous 1-D float32 or "
                                 f"float64 array")
        if grads.dtype != params.dtype or grads.shape != params.shape:
            raise ValueError(f"grads: expected the shape and dtype of params {params.shape} "
                             f"{params.dtype}, got {grads.shape} {grads.dtype}")
        if np.may_share_memory(params, grads):
            raise ValueError("grads: must not share memory with params")
        if not 1 <= capacity <= INT_MAX:
            raise ValueError(f"capacity: expected a batch size in [1, {INT_MAX}], got {capacity}")
        if not (isinstance(dropout_state, np.ndarray) and dropout_state.dtype == np.uint64 and
                dropout_state.shape == (2,) and dropout_state.flags.c_contiguous and
                dropout_state.flags.writeable):
            raise ValueError("dropout_state: expected a writable uint64 array [seed, step]")
        self.dtype = params.dtype
        self.capacity = capacity
        self.net.dtype = FP_FLOAT32 if params.dtype == np.float32 else FP_FLOAT64
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
            if not (isinstance(buf, np.ndarray) and buf.shape == (n,) and
                    buf.dtype == self.dtype and buf.flags.c_contiguous and buf.flags.writeable):
                raise ValueError(f"optimizer state[{i}]: expected a writable C-contiguous "
                                 f"{self.dtype} array of shape ({n},)")
            if any(np.may_share_memory(buf, other) for other in others):
                raise ValueError(f"optimizer state[{i}]: must not share memory with the model "
                                 f"or the other state buffer")
            others.append(buf)
        if not (isinstance(steps, np.ndarray) and steps.dtype == np.int64 and
                steps.shape == (1,) and steps.flags.writeable and steps.flags.c_contiguous):
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
            if not (isinstance(weights, np.ndarray) and weights.dtype == self.dtype and
                    weights.shape == (batch.n,) and weights.flags.c_contiguous):
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
            n = _csr_checked(X, self.dtype, self.net.layer[0].n_in)
        elif not (X.dtype == self.dtype and X.flags.c_contiguous and X.ndim == 2 and
                  X.shape[1] == self.net.layer[0].n_in and X.shape[0] >= 1):
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
            if not (isinstance(labels, np.ndarray) and labels.dtype == np.int64 and
                    labels.ndim == 1 and labels.flags.c_contiguous and labels.shape[0] == n):
                raise ValueError(f"labels: expected C-contiguous int64 labels for {n} rows")
            if not _all_below(<int64_t *>_data(labels), n, n_out):
                raise ValueError(f"labels: expected labels in [0, {n_out})")
        elif not (isinstance(Y, np.ndarray) and Y.dtype == self.dtype and Y.flags.c_contiguous
                  and Y.ndim == 2 and Y.shape[0] == n and Y.shape[1] == n_out):
            raise ValueError(f"Y: expected a C-contiguous {self.dtype} array ({n}, {n_out})")
        return n

    cdef bint _intact(self, cnp.ndarray buf, void *expected):
        return (buf.dtype == self.dtype and buf.shape[0] == self.net.n_params and
                buf.ndim == 1 and cnp.PyArray_DATA(buf) == expected)

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
        if not (isinstance(out, np.ndarray) and out.dtype == self.dtype and out.shape == (n, n_out)
                and out.flags.c_contiguous and out.flags.writeable):
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
                    if not (isinstance(arr, np.ndarray) and arr.dtype == self.dtype and
                            arr.shape == (b.n, self.net.layer[l].n_out) and
                            arr.flags.c_contiguous and arr.flags.writeable):
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
        d.shape = self._shape_code()
        d._order = None
        d.order_ptr = NULL
        if order is not None:
            d.set_order(order)
        return d

    cdef object _shape_code(self):
        cdef int L = self.net.n_layers
        return (self.net.dtype, self.net.layer[0].n_in, self.net.layer[L - 1].n_out,
                self.net.layer[L - 1].activation)

    cdef Data _checked(self, Data data, int batch_size):
        if data is None or data.shape != self._shape_code():
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
        cdef double *rates = <double *>_vector(lrs, "lrs", np.float64, n_epochs, False)
        cdef double *out_loss = <double *>_vector(losses, "losses", np.float64, n_epochs, True)
        cdef int64_t *out_correct = <int64_t *>_vector(corrects, "corrects", np.int64, n_epochs,
                                                       True)
        cdef double *out_seconds = <double *>_vector(seconds, "seconds", np.float64, n_epochs,
                                                     True)
        for e in range(n_epochs):
            if not (rates[e] >= 0 and _finite(rates[e])):
                raise ValueError(f"lrs: expected finite learning rates >= 0, got {rates[e]!r}")
        cdef uint64_t *shuffle = NULL
        if shuffle_state is not None:
            if data.order_ptr == NULL:
                raise ValueError("shuffle_state: this data takes the rows in X's order")
            if not (isinstance(shuffle_state, np.ndarray) and shuffle_state.dtype == np.uint64
                    and shuffle_state.shape == (2,) and shuffle_state.flags.writeable):
                raise ValueError("shuffle_state: expected a writable uint64 array [seed, count]")
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

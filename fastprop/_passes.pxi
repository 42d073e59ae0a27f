# The engine's passes (included by _engine.pyx, compiled into the same module: one fork gate,
# one set of structs). Everything here runs without the GIL on a Net, over a checked Batch, and
# never allocates: the network's description and workspace (Net), the steps (forward, backward,
# the update), the epochs over an order of rows, the reading passes in chunks, and the look-up
# between two steps for a pending fork or a signal handler. The Engine class in _engine.pyx
# builds the Net, checks what it is handed and drives these.

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


cdef inline bint _from_logits(int loss) noexcept nogil:
    """Whether the loss reads the output layer's logits Z alone (not its activation)."""
    cdef fp_loss_info info
    return fp_loss_describe(loss, &info) == FP_OK and info.from_logits


cdef void _forward(Net *net, const floating *X, int n, bint training, Py_ssize_t row0,
                   bint logits_only=False) noexcept nogil:
    """A_l = f(A_{l-1} W_l + b_l) for every layer; inverted dropout after a layer when training,
    its mask that of rows row0, row0 + 1, ... of the step's batch (row0 > 0: a part of it).
    logits_only: the output layer's activation is not computed (a training step of a loss from
    the logits reads Z alone; its A then holds Z)."""
    cdef int l, L = net.n_layers, activation
    cdef LayerDesc *d
    cdef floating *params = <floating *>net.params
    cdef const floating *A_prev = X
    cdef floating *Z
    cdef floating *W
    for l in range(L):
        d = &net.layer[l]
        W = params + d.w_offset
        activation = FP_IDENTITY if logits_only and l == L - 1 else d.activation
        if l == 0 and net.csr != NULL:  # CSR rows: the stored values' rows of W, summed
            Z = <floating *>(net.Z[0] if net.Z[0] != NULL else net.A[0])
            fp_csr_product(net.dtype, net.csr.X, net.csr.indices, net.csr.indptr, net.csr_ids,
                           net.csr_first, n, W, d.n_out, Z)
            fp_bias_activation(net.dtype, Z, net.A[0], W + <Py_ssize_t>d.n_in * d.n_out, n,
                               d.n_out, activation, d.param)
        else:
            forward_layer(A_prev, d.n_in, False, W, d.n_out, False,
                          W + <Py_ssize_t>d.n_in * d.n_out, <floating *>net.Z[l],
                          <floating *>net.A[l], n, d.n_in, d.n_out, activation, d.param)
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
    _forward(net, X, n, training, 0, training and _from_logits(loss))
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
    _forward(net, Xp, <int>n, training, part_lo, training and _from_logits(loss))
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

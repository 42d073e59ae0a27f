"""Every bad argument across the public API: a TypeError or ValueError, raised before anything
changes, whose message names the argument. One row per case: (the argument's name as the
message must give it, the call)."""
import math

import numpy as np
import pytest

import fastprop as fp
import fastprop.kernels as K
from fastprop import schedules

rng = np.random.default_rng(0)
X = rng.normal(size=(12, 3))
Y = rng.normal(size=(12, 2))
LABELS = rng.integers(0, 3, size=12)


def reg():
    return fp.Sequential([fp.Dense(3, 4, "tanh"), fp.Dense(4, 2)], dtype="float64", seed=0)


def clf():
    return fp.Sequential([fp.Dense(3, 4, "relu"), fp.Dense(4, 3, "softmax")], dtype="float64",
                         seed=0)


def fit(**kw):
    return lambda: reg().fit(X, Y, "mse", **kw)


def fitc(**kw):
    return lambda: clf().fit(X, LABELS, "softmax_cross_entropy", **kw)


def setattr_(obj, name, value):
    return lambda: setattr(obj, name, value)


WEIRD = [None, "abc", -1, 0, 1.5, math.nan, math.inf, -math.inf, [], {}, object(), True,
         2 ** 70, np.array([1, 2])]


def weird(arg, make, skip=()):
    """Rows for argument `arg` over the weird values, but those in `skip` (valid there)."""
    return [(arg, (lambda v: (lambda: make(v)))(v)) for v in WEIRD
            if not any(v is s or (type(v) is type(s) and v == s) for s in skip
                       if not isinstance(v, np.ndarray))]


CASES = (
    # layers and models
    weird("n_in", lambda v: fp.Dense(v, 2), skip=[True])
    + weird("n_out", lambda v: fp.Dense(2, v), skip=[True])
    + weird("activation", lambda v: fp.Dense(2, 2, v), skip=[None])
    + weird("negative_slope", lambda v: fp.Dense(2, 2, "leaky_relu", negative_slope=v),
            skip=[0, 1.5, 2 ** 70])
    + weird("init", lambda v: fp.Dense(2, 2, init=v), skip=[None])
    + weird("rate", lambda v: fp.Dropout(v), skip=[0])
    + weird("dtype", lambda v: fp.Sequential([fp.Dense(2, 2)], dtype=v))
    + weird("seed", lambda v: fp.Sequential([fp.Dense(2, 2)], seed=v), skip=[None, 0])
    + weird("layers", lambda v: fp.Sequential(v))
    + [
        ("layers", lambda: fp.Sequential(fp.Dense(2, 2))),
        ("layers[1]", lambda: fp.Sequential([fp.Dense(2, 3), fp.Dense(2, 3)])),
        ("layers[0]", lambda: fp.Sequential([fp.Dropout(0.5), fp.Dense(2, 2)])),
        ("layers[1]", lambda: fp.Sequential([fp.Dense(2, 2), fp.Dropout(0.5)])),
        ("layers[0]", lambda: fp.Sequential([fp.Dense(2, 2, "softmax"), fp.Dense(2, 2)])),
        ("n_out", lambda: fp.Dense(2, 1, "softmax")),
        ("activation", lambda: fp.Dense(2, 2, "relux")),
        ("init", lambda: fp.Dense(2, 2, init=np.ones((3, 3)))),
        ("init", lambda: fp.Dense(2, 2, init=np.full((2, 2), np.nan))),
    ]
    # fit's arguments
    + weird("epochs", lambda v: fit(epochs=v)(), skip=[True])
    + weird("batch_size", lambda v: fit(batch_size=v)())
    + weird("optimizer", lambda v: fit(optimizer=v)(), skip=[None])
    + weird("validation_split", lambda v: fit(validation_split=v)(), skip=[None, 0])
    + weird("validation_data", lambda v: fit(validation_data=v)(), skip=[None])
    + weird("metrics", lambda v: fit(metrics=v)(), skip=[None, []])
    + weird("callbacks", lambda v: fit(callbacks=v)(), skip=[None, []])
    + weird("lr_schedule", lambda v: fit(lr_schedule=v)(), skip=[None])
    + weird("n_threads", lambda v: fit(n_threads=v)(), skip=[None, True])
    + weird("shuffle", lambda v: fit(shuffle=v)(), skip=[True])
    + weird("warm_start", lambda v: fit(warm_start=v)(), skip=[True])
    + weird("verbose", lambda v: fit(verbose=v)(), skip=[0, True])
    + weird("progress", lambda v: fit(progress=v)(), skip=[None, True])
    + [
        ("seed", fit(seed="abc")), ("seed", fit(seed=-1)), ("seed", fit(seed=1.5)),
        ("validation_data[0] (X_val)", fit(validation_data=(X[:, :2], Y))),
        ("validation_data[1] (y_val)", fit(validation_data=(X, Y[:5]))),
        ("validation_data", fit(validation_data=(X,))),
        ("validation_split", fit(validation_split=0.2, validation_data=(X, Y))),
        ("metrics", fit(metrics="accuracy")),
        ("metrics", fit(metrics=["acuracy"])),
        ("callbacks[0]", fit(callbacks=["stop"])),
        ("callbacks", fit(callbacks=fp.EarlyStopping())),
        ("lr_schedule", fit(lr_schedule=lambda e, lr: -1.0)),
        ("lr_schedule", fit(lr_schedule=lambda e, lr: math.nan)),
        ("lr_schedule", fit(lr_schedule=lambda e, lr: "fast")),
        ("loss", lambda: reg().fit(X, Y, "msee")),
        ("loss", lambda: reg().fit(X, Y, None)),
        ("loss", lambda: reg().fit(X, Y, "binary_cross_entropy")),
        ("loss", lambda: clf().fit(X, LABELS, "mse")),
        ("y", lambda: clf().fit(X, LABELS + 3, "softmax_cross_entropy")),
        ("y", lambda: clf().fit(X, LABELS + 0.5, "softmax_cross_entropy")),
        ("y", lambda: clf().fit(X, 5 * np.eye(3)[LABELS], "softmax_cross_entropy")),
        ("y", lambda: clf().fit(X, -np.eye(3)[LABELS], "softmax_cross_entropy")),
        ("y", lambda: reg().fit(X, Y[:, :1], "mse")),
        ("y", lambda: reg().fit(X, np.full((12, 2), np.inf), "mse")),
        ("X", lambda: fp.Sequential([fp.Dense(3, 2)], seed=0).fit(np.full((12, 3), 1e39), Y,
                                                                  "mse")),
        ("X", lambda: reg().fit(X.astype(complex), Y, "mse")),
        ("X", lambda: reg().fit(X[:, :2], Y, "mse")),
        ("X", lambda: reg().fit(np.ones((0, 3)), Y[:0], "mse")),
        ("X", lambda: reg().fit("X", Y, "mse")),
    ]
    # the other methods
    + weird("X", lambda v: reg().predict(v))
    + weird("y", lambda v: reg().evaluate(X, v, "mse"))
    + weird("loss", lambda v: reg().evaluate(X, Y, v))
    + weird("metrics", lambda v: reg().evaluate(X, Y, "mse", metrics=v), skip=[None, []])
    + weird("optimizer", lambda v: reg().train_step(X, Y, "mse", v))
    + weird("weights", lambda v: reg().set_weights(v))
    + weird("params", lambda v: setattr(reg(), "params", v))
    + weird("grads", lambda v: setattr(reg(), "grads", v))
    + weird("W", lambda v: setattr(reg().layers[0], "W", v))
    + weird("b", lambda v: setattr(reg().layers[0], "b", v))
    + weird("dtype", lambda v: reg().copy(dtype=v), skip=[None])
    + weird("state_dict", lambda v: reg().from_torch_state_dict(v))
    + [
        ("weights[0]", lambda: reg().set_weights([np.ones((3, 4)), (np.ones((4, 2)), np.ones(2))])),
        ("weights[1][0] (W)", lambda: reg().set_weights([(np.ones((3, 4)), np.ones(4)),
                                                         (np.ones((4, 3)), np.ones(2))])),
        ("optimizer", lambda: reg().save("/tmp/fastprop-bad-input.npz", optimizer=fp.SGD())),
        ("optimizer", lambda: reg().save("/tmp/fastprop-bad-input.npz", optimizer="sgd")),
        ("X", lambda: reg().explain(X[:, :2], Y, "mse")),
        ("loss", lambda: reg().explain(X, Y, "cross_entropy")),
        ("X", lambda: reg().loss_and_gradients(np.full((12, 3), np.nan), Y, "mse")),
        ("optimizer", lambda: reg().partial_fit(X, Y, "mse", optimizer="adam")),
    ]
    # optimizers: at construction and when set
    + weird("lr", lambda v: fp.SGD(lr=v), skip=[1.5, 2 ** 70])
    + weird("momentum", lambda v: fp.SGD(momentum=v), skip=[0])
    + weird("nesterov", lambda v: fp.SGD(momentum=0.9, nesterov=v), skip=[True])
    + weird("weight_decay", lambda v: fp.Adam(weight_decay=v), skip=[0, 1.5, 2 ** 70])
    + weird("clip_norm", lambda v: fp.RMSprop(clip_norm=v), skip=[None, 1.5, 2 ** 70])
    + weird("betas", lambda v: fp.Adam(betas=v))
    + weird("eps", lambda v: fp.AdamW(eps=v), skip=[1.5, 2 ** 70])
    + weird("alpha", lambda v: fp.RMSprop(alpha=v), skip=[0])
    + [
        ("lr", setattr_(fp.SGD(), "lr", -0.1)),
        ("lr", setattr_(fp.Adam(), "lr", "fast")),
        ("momentum", setattr_(fp.SGD(), "momentum", 1.0)),
        ("betas[1]", setattr_(fp.Adam(), "betas", (0.9, 1.0))),
        ("nesterov", lambda: fp.SGD(nesterov=True)),
    ]
    # schedules and callbacks
    + weird("step_size", lambda v: schedules.StepDecay(v), skip=[True])
    + weird("gamma", lambda v: schedules.Exponential(v), skip=[1.5, True, 2 ** 70])
    + weird("epochs", lambda v: schedules.Cosine(v), skip=[True])
    + weird("power_t", lambda v: schedules.InverseScaling(v), skip=[1.5, 2 ** 70])
    + weird("patience", lambda v: fp.EarlyStopping(patience=v), skip=[0, True])
    + weird("monitor", lambda v: fp.EarlyStopping(monitor=v), skip=["abc"])
    + weird("factor", lambda v: fp.ReduceLROnPlateau(factor=v))
    + weird("min_delta", lambda v: fp.ReduceLROnPlateau(min_delta=v), skip=[0, 1.5, 2 ** 70])
    + weird("mode", lambda v: fp.ModelCheckpoint("m.npz", mode=v))
    + weird("path", lambda v: fp.ModelCheckpoint(v), skip=["abc"])
    + [
        ("warmup", lambda: schedules.Cosine(10, warmup=10)),
        ("min_lr", lambda: schedules.Cosine(10, min_lr=-1)),
        ("monitor", fit(callbacks=[fp.EarlyStopping(monitor="val_los")], validation_split=0.25)),
        ("monitor", fitc(callbacks=[fp.ModelCheckpoint("/tmp/fastprop-ck.npz",
                                                       monitor="val_r2")],
                         validation_split=0.25)),
    ]
    # gradcheck, datasets, metrics, loading
    + weird("eps", lambda v: fp.gradcheck(reg(), X, Y, eps=v), skip=[1.5, 2 ** 70])
    + weird("rtol", lambda v: fp.gradcheck(reg(), X, Y, rtol=v), skip=[0, 1.5, 2 ** 70])
    + weird("max_params", lambda v: fp.gradcheck(reg(), X, Y, max_params=v), skip=[None, True])
    + weird("model", lambda v: fp.gradcheck(v, X, Y))
    + weird("n_samples", lambda v: fp.datasets.make_spirals(n_samples=v), skip=[True])
    + weird("n_classes", lambda v: fp.datasets.make_spirals(n_classes=v), skip=[True])
    + weird("noise", lambda v: fp.datasets.make_spirals(noise=v), skip=[0, 1.5, 2 ** 70])
    + weird("metrics", lambda v: fp.metrics.get_metric(v), skip=["abc"])
    + weird("path", lambda v: fp.load(v), skip=["abc"])
    # the kernels
    + weird("X", lambda v: K.forward(v, np.ones((3, 2)), np.ones(2)))
    + weird("W", lambda v: K.forward(X, v, np.ones(2)))
    + weird("b", lambda v: K.forward(X, np.ones((3, 2)), v))[:-1]
    + weird("activation", lambda v: K.forward(X, np.ones((3, 2)), np.ones(2), v), skip=[None])
    + weird("out", lambda v: K.forward(X, np.ones((3, 2)), np.ones(2), out=v), skip=[None])
    + weird("lr", lambda v: K.sgd_update(np.zeros(3), np.zeros(3), v), skip=[1.5, 2 ** 70])
    + [
        ("out", lambda: K.forward(X, np.ones((3, 3)), np.ones(3), out=X)),
        ("Z_out", lambda: (lambda o: K.forward(X, np.ones((3, 2)), np.ones(2), out=o, Z_out=o))(
            np.empty((12, 2)))),
        ("out", lambda: (lambda W: K.forward(np.ones((3, 3)), W, np.ones(3), out=W))(
            np.ones((3, 3)))),
        ("out", lambda: K.delta(Y, np.ones((3, 2)), X, "relu", out=X)),
        ("out", lambda: (lambda d: K.delta(d, np.ones((3, 3)), X, "relu", out=d))(X.copy())),
        ("dW", lambda: (lambda A: K.weight_gradient(A, A, dW=A))(np.ones((3, 3)))),
        ("db", lambda: (lambda dW: K.weight_gradient(X, Y, dW=dW, db=dW[0]))(np.ones((3, 2)))),
        ("out", lambda: (lambda Z: K.loss_gradient("mse", Z, Z.copy(), Y, "identity", out=Z))(
            Y.copy())),
        ("dZ", lambda: K.weight_gradient(np.ones((5, 3)), np.zeros((5, 0)))),
        ("A_prev", lambda: K.weight_gradient(np.ones((5, 0)), np.zeros((5, 3)))),
        ("W", lambda: K.forward(X, np.full((3, 2), np.nan), np.ones(2))),
        ("b", lambda: K.forward(X, np.ones((3, 2)), np.array([np.inf, 0.0]))),
        ("grads", lambda: K.sgd_update(np.zeros(3), np.array([0, np.nan, 0]), 0.1)),
        ("params", lambda: K.sgd_update(np.array([0, np.nan, 0]), np.zeros(3), 0.1)),
        ("grads", lambda: (lambda p: K.sgd_update(p, p, 0.1))(np.zeros(3))),
        ("dZ", lambda: K.delta(np.full((12, 2), np.nan), np.ones((3, 2)), X, "relu")),
        ("dW", lambda: K.weight_gradient(X, Y, dW=np.full((3, 2), np.nan), db=np.zeros(2),
                                         accumulate=True)),
        ("Z", lambda: K.loss_gradient("mse", np.full((12, 2), np.inf), Y, Y, "identity")),
    ]
)


def _ids():
    seen = {}
    out = []
    for arg, _ in CASES:
        seen[arg] = seen.get(arg, 0) + 1
        out.append(f"{arg}-{seen[arg]}")
    return out


def test_there_are_enough_cases():
    assert len(CASES) >= 150


@pytest.mark.parametrize("arg,call", CASES, ids=_ids())
def test_bad_argument_raises_a_clear_error(arg, call):
    with pytest.raises((TypeError, ValueError)) as info:
        call()
    message = str(info.value)
    assert message.startswith(arg) or f"{arg}:" in message or f"{arg} " in message, message


def test_dimensions_beyond_a_c_int_are_refused_without_touching_memory():
    huge = np.broadcast_to(np.float32(1), (1, 2**31))  # 8 GiB that are never allocated
    with pytest.raises(ValueError, match="W: expected dimensions up to 2147483647"):
        K.forward(np.ones((1, 1), np.float32), huge, np.ones(1, np.float32))
    with pytest.raises(ValueError, match="X: dimensions above 2147483647"):
        fp.Sequential([fp.Dense(3, 2)]).predict(np.broadcast_to(np.float32(1), (2**31, 3)))


def test_the_compiled_twins_check_every_size_they_dereference():
    from fastprop import _kernels
    A = np.ones((40, 40))
    with pytest.raises(ValueError, match=r"D: expected a non-empty \(40, 40\) array"):
        _kernels._dropout(A, np.ones((40, 40)), np.ones((2, 2)), 1, 0.5)
    with pytest.raises(ValueError, match=r"W: expected a non-empty \(40, 3\) array"):
        _kernels._forward(A, False, np.ones((3, 3)), False, np.ones(3), None, np.ones((40, 3)),
                          0, 0.0)
    with pytest.raises(ValueError, match=r"labels: expected labels in \[0, 40\)"):
        _kernels._loss_gradient(3, A, A, None, np.full(40, 99, np.int64), None, 5, 0.0)
    with pytest.raises(ValueError, match="loss: unknown code 42"):
        _kernels._loss_gradient(42, A, A, A, None, None, 0, 0.0)
    with pytest.raises(ValueError, match="grads: expected the length of params"):
        _kernels._sgd_update(np.ones(5), np.ones(3), 0.1)
    with pytest.raises(ValueError, match=r"db: expected \(40,\)"):
        _kernels._weight_gradient(A, False, A, np.ones((40, 40)), np.ones(3), False)


def test_strings_are_not_numbers():
    with pytest.raises(TypeError, match="rate: expected a number in"):
        fp.Dropout("0.5")
    with pytest.raises(TypeError, match="dtype: expected 'float32' or 'float64', got None"):
        fp.Sequential([fp.Dense(2, 2)], dtype=None)

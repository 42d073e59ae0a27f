"""Property-based tests: random architectures, dtypes, activations, losses and input layouts
against the NumPy oracle, and a bounded fuzz of the model-file reader."""
import io
import json

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

import fastprop as fp  # noqa: E402
import reference as ref  # noqa: E402
from helpers import layouts  # noqa: E402

HIDDEN = ["identity", "sigmoid", "tanh", "relu", "leaky_relu"]
OUTPUTS = [("mse", "tanh"), ("half_squared_error", "identity"), ("mae", "sigmoid"),
           ("huber", "identity"), ("binary_cross_entropy", "sigmoid"),
           ("multilabel_binary_cross_entropy", "sigmoid"), ("softmax_cross_entropy", "softmax")]
SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def problems(draw):
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    widths = draw(st.lists(st.integers(1, 9), min_size=1, max_size=3))
    loss, out_act = draw(st.sampled_from(OUTPUTS))
    n_in = draw(st.integers(1, 6))
    n_out = draw(st.integers(2 if out_act == "softmax" else 1, 5))
    acts = [draw(st.sampled_from(HIDDEN)) for _ in widths] + [out_act]
    sizes = [n_in] + widths + [n_out]
    n = draw(st.integers(1, 17))
    seed = draw(st.integers(0, 2**16))
    layout = draw(st.sampled_from(["C", "F", "strided", "readonly"]))
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_in))
    if loss == "softmax_cross_entropy":
        y = rng.integers(0, n_out, size=n) if draw(st.booleans()) else \
            np.eye(n_out)[rng.integers(0, n_out, size=n)]
    elif loss in ("binary_cross_entropy", "multilabel_binary_cross_entropy"):
        y = (rng.random((n, n_out)) > 0.5) * 1.0
    else:
        y = rng.normal(size=(n, n_out))
    layers = [fp.Dense(a, b, act) for a, b, act in zip(sizes, sizes[1:], acts)]
    model = fp.Sequential(layers, dtype=dtype, seed=seed)
    return model, acts, layouts(X)[layout], X, y, loss


def _tol(dtype):
    return dict(rtol=2e-3, atol=2e-4) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-11)


@SETTINGS
@given(problems())
def test_loss_gradients_and_predictions_match_the_oracle(problem):
    model, acts, Xl, X, y, loss = problem
    weights = [(W.astype(np.float64), b.astype(np.float64)) for W, b in model.get_weights()]
    Yref = y if y.ndim == 2 or loss != "softmax_cross_entropy" else y
    value, grads, out = ref.backprop(weights, acts, X, Yref.reshape(len(X), -1)
                                     if Yref.ndim == 1 and loss != "softmax_cross_entropy"
                                     else Yref, loss)
    got_value, got_grads = model.loss_and_gradients(Xl, y, loss)
    tol = _tol(model.dtype)
    np.testing.assert_allclose(got_value, value, **tol)
    np.testing.assert_allclose(model.predict(Xl), out, **tol)
    for (dW, db), (rW, rb) in zip(got_grads, grads):
        np.testing.assert_allclose(dW, rW, **tol)
        np.testing.assert_allclose(db, rb, **tol)


@SETTINGS
@given(problems(), st.integers(1, 6))
def test_fit_matches_the_oracle(problem, batch_size):
    model, acts, Xl, X, y, loss = problem
    start = model.get_weights()
    model.fit(Xl, y, loss, fp.SGD(0.05, momentum=0.5), epochs=2, batch_size=batch_size,
              shuffle=False)
    batches = ref.epoch_batches(len(X), batch_size, 2)
    expected, _ = ref.train(start, acts, X, y, loss, batches,
                            ref.Optimizer("SGD", lr=0.05, momentum=0.5))
    np.testing.assert_allclose(model.params, ref.flatten(expected), **_tol(model.dtype))


def _saved():
    rng = np.random.default_rng(0)
    model = fp.Sequential([fp.Dense(3, 4, "tanh"), fp.Dropout(0.2), fp.Dense(4, 2, "softmax")],
                          seed=1)
    model.fit(rng.normal(size=(20, 3)), rng.integers(0, 2, 20), "softmax_cross_entropy",
              fp.Adam(0.01), epochs=1, batch_size=8)
    return model, fp.io.to_bytes(model)


MODEL, GOOD = _saved()


def _load_or_refuse(data):
    """A damaged file is refused with a ValueError, or (where the damage missed everything the
    format covers, such as a zip timestamp) loads as the very model that was saved."""
    try:
        loaded = fp.io.from_bytes(bytes(data), fp.Sequential)
    except ValueError as exc:
        assert "not a valid fastprop model file" in str(exc)
        return "refused"
    np.testing.assert_array_equal(loaded.params, MODEL.params)
    assert repr(loaded) == repr(MODEL) and loaded.optimizer.t == MODEL.optimizer.t
    return "loaded"


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.integers(0, len(GOOD) - 1), st.integers(1, 255)), min_size=1,
                max_size=4))
def test_fuzz_byte_flips(flips):
    data = bytearray(GOOD)
    for at, xor in flips:
        data[at] ^= xor
    _load_or_refuse(data)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(st.integers(0, len(GOOD) - 1))
def test_fuzz_truncations(length):
    assert _load_or_refuse(GOOD[:length]) == "refused"


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70) |
                           st.floats(allow_nan=True) | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) |
                           st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=6)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.sampled_from(["dtype", "layers", "seed", "rng_state", "dropout_seed", "dropout_step",
                        "n_params", "optimizer", "version", "format", "sha256"]), JSON_VALUES,
       st.booleans())
def test_fuzz_header_edits(field, value, reseal):
    with np.load(io.BytesIO(GOOD)) as f:
        arrays = {k: f[k] for k in f.files}
    header = json.loads(arrays.pop("header").tobytes())
    header[field] = value
    if reseal:  # behind a valid checksum, the reader's other checks must hold
        header["sha256"] = fp.io.digest(header, [arrays[k] for k in ("params",
                                                                     "optimizer_state_0",
                                                                     "optimizer_state_1")])
    buf = io.BytesIO()
    np.savez(buf, header=np.frombuffer(json.dumps(header).encode(), np.uint8), **arrays)
    try:
        fp.io.from_bytes(buf.getvalue(), fp.Sequential)
    except ValueError as exc:
        assert "not a valid fastprop model file" in str(exc)

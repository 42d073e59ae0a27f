"""ONNX export: the graph run by onnxruntime predicts what fastprop predicts, for every
activation and output, in float32 and float64, for models and for the scikit-learn estimators."""
import numpy as np
import pytest

import fastprop as fp

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from fastprop.onnx import save_onnx, to_onnx  # noqa: E402


def run(onnx_model, X):
    session = ort.InferenceSession(onnx_model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {"X": X})))


def tol(dtype):
    return dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("hidden", ["identity", "sigmoid", "tanh", "relu", "leaky_relu"])
@pytest.mark.parametrize("out", ["identity", "sigmoid", "softmax", "tanh"])
def test_every_activation_and_output(dtype, hidden, out):
    model = fp.Sequential([fp.Dense(5, 7, hidden, negative_slope=0.2), fp.Dropout(0.3),
                           fp.Dense(7, 4, hidden, negative_slope=0.2),
                           fp.Dense(4, 3, out)], dtype=dtype, seed=1)
    X = np.random.default_rng(0).normal(size=(33, 5)).astype(dtype)
    got = run(to_onnx(model), X)["output"]
    assert got.dtype == dtype
    np.testing.assert_allclose(got, model.predict(X), **tol(dtype))


def test_save_onnx_writes_a_loadable_file(tmp_path):
    model = fp.Sequential([fp.Dense(3, 4, "relu"), fp.Dense(4, 2, "softmax")], seed=0)
    path = save_onnx(model, tmp_path / "m.onnx")
    loaded = onnx.load(path)
    X = np.ones((2, 3), np.float32)
    np.testing.assert_allclose(run(loaded, X)["output"], model.predict(X), rtol=1e-6)
    with pytest.raises(TypeError, match="model_or_estimator: expected a fastprop.Sequential"):
        to_onnx("model")


def test_estimators_export_labels_and_probabilities():
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_digits, make_multilabel_classification, make_regression
    from fastprop.sklearn import MLPClassifier, MLPRegressor
    X, y = load_digits(return_X_y=True)
    X = (X[:300] / 16).astype(np.float32)
    y = y[:300]
    names = np.array([f"digit-{d}" for d in range(10)])[y]
    for target in (y, names, y == 3):
        est = MLPClassifier((16,), max_iter=20, random_state=0).fit(X, target)
        out = run(to_onnx(est), X)
        np.testing.assert_allclose(out["probabilities"], est.predict_proba(X), rtol=1e-5,
                                   atol=1e-6)
        got = out["label"]
        want = est.predict(X)
        if want.dtype.kind in "US":
            got = got.astype(str)
        np.testing.assert_array_equal(got, want)
    Xm, Ym = make_multilabel_classification(100, 6, n_classes=3, random_state=0)
    m = MLPClassifier((8,), max_iter=20, random_state=0).fit(Xm, Ym)
    out = run(to_onnx(m), Xm)
    np.testing.assert_array_equal(out["label"], m.predict(Xm))
    Xr, yr = make_regression(50, 4, n_targets=2, random_state=0)
    r = MLPRegressor(hidden_layer_sizes=(8,), max_iter=20, random_state=0).fit(Xr, yr)
    np.testing.assert_allclose(run(to_onnx(r), Xr)["variable"], r.predict(Xr), rtol=1e-10)
    with pytest.raises(ValueError, match="expected a fitted estimator"):
        to_onnx(MLPClassifier())

"""fit's options: validation, metrics, learning-rate schedules, callbacks, progress, History."""
import io
import math
import sys

import numpy as np
import pytest

import fastprop as fp
from fastprop import schedules


def blobs(n=300, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, size=n)
    X = rng.normal(size=(n, 4)) + 3.0 * np.eye(3, 4)[y]
    return X, y


def clf(seed=0):
    return fp.Sequential([fp.Dense(4, 16, "relu"), fp.Dense(16, 3, "softmax")], seed=seed)


def test_validation_data_and_metrics():
    X, y = blobs()
    model = clf()
    h = model.fit(X[:200], y[:200], "softmax_cross_entropy", fp.SGD(0.1), epochs=10,
                  validation_data=(X[200:], y[200:]), metrics=["accuracy", "top_2_accuracy"])
    assert len(h.val_loss) == 10 and h.val_loss[-1] < h.val_loss[0]
    ev = model.evaluate(X[200:], y[200:], "softmax_cross_entropy",
                        metrics=["accuracy", "top_2_accuracy"])
    assert h.val_loss[-1] == pytest.approx(ev["loss"], rel=1e-6)
    assert h.metrics["val_accuracy"][-1] == pytest.approx(ev["accuracy"])
    assert h.metrics["val_top_2_accuracy"][-1] >= h.metrics["val_accuracy"][-1]
    assert ev["accuracy"] > 0.9


def test_validation_split_holds_out_the_last_fraction():
    X, y = blobs()
    a, b = clf(), clf()
    ha = a.fit(X, y, "softmax_cross_entropy", epochs=3, validation_split=0.25, seed=1)
    hb = b.fit(X[:225], y[:225], "softmax_cross_entropy", epochs=3,
               validation_data=(X[225:], y[225:]), seed=1)
    np.testing.assert_array_equal(a.params, b.params)
    assert ha.val_loss == hb.val_loss
    with pytest.raises(ValueError, match="validation_split: expected a fraction in"):
        a.fit(X, y, "softmax_cross_entropy", validation_split=1.5)
    with pytest.raises(ValueError, match="validation_split: give validation_data or"):
        a.fit(X, y, "softmax_cross_entropy", validation_split=0.2, validation_data=(X, y))


def test_metrics_against_definitions():
    from fastprop import metrics as M
    y = np.array([0, 1, 2, 1])
    p = np.array([[0.6, 0.3, 0.1], [0.2, 0.3, 0.5], [0.1, 0.2, 0.7], [0.3, 0.4, 0.3]])
    assert M.accuracy(y, p) == 0.75
    assert M.accuracy(np.eye(3)[y], p) == 0.75
    assert M.top_k_accuracy(y, p, 2) == 1.0
    assert M.accuracy(np.array([1, 0, 1]), np.array([[0.7], [0.6], [0.2]])) == pytest.approx(1 / 3)
    t = np.array([[1.0], [2.0], [3.0], [4.0]])
    q = np.array([[1.5], [2.0], [2.0], [5.0]])
    assert M.mse(t, q) == pytest.approx((0.25 + 0 + 1 + 1) / 4)
    assert M.mae(t, q) == pytest.approx((0.5 + 0 + 1 + 1) / 4)
    assert M.r2(t, q) == pytest.approx(1 - 2.25 / 5.0)
    with pytest.raises(ValueError, match="metrics: expected names among"):
        M.get_metric("f1")


def test_schedule_values():
    assert schedules.StepDecay(2, 0.5)(5, 1.0) == 0.25
    assert schedules.Exponential(0.9)(3, 2.0) == pytest.approx(2 * 0.9 ** 3)
    cos = schedules.Cosine(epochs=10, warmup=2, min_lr=0.1)
    assert [round(cos(e, 1.0), 6) for e in (0, 1, 2)] == [0.5, 1.0, 1.0]
    assert cos(6, 1.0) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert cos(10, 1.0) == pytest.approx(0.1)
    assert cos(25, 1.0) == pytest.approx(0.1)  # past its horizon it holds its last value
    # scikit-learn's invscaling: base / (samples seen + 1) ** power_t
    assert schedules.InverseScaling(0.5, samples_per_epoch=33)(3, 1.0) == pytest.approx(0.1)
    assert schedules.InverseScaling(0.5)(3, 1.0) == pytest.approx(0.5)


def test_reduce_lr_on_plateau_is_a_callback_that_starts_afresh_each_fit():
    X, y = blobs()
    plateau = fp.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1, min_delta=0)

    class FakeLoss(fp.Callback):  # runs first: replaces the loss by a scripted one
        def __init__(self):
            self.values = iter([3, 2, 2, 2, 2, 1] * 2)

        def on_epoch_end(self, model, epoch, logs):
            logs["loss"] = next(self.values)

    model, opt = clf(), fp.SGD(1.0)
    h1 = model.fit(X, y, "softmax_cross_entropy", opt, epochs=6, callbacks=[FakeLoss(), plateau])
    # no improvement at epochs 2, 3 (2 > patience: halve for what follows), 4 (1), then 5 improves
    assert h1.lr == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5]
    assert opt.lr == 1.0  # the optimizer's own rate is untouched
    h2 = model.fit(X, y, "softmax_cross_entropy", opt, epochs=6, callbacks=[FakeLoss(), plateau])
    assert h2.lr == h1.lr  # no state carried over from the first fit


def test_two_scheduled_fits_run_at_the_same_rates():
    X, y = blobs()
    model, opt = clf(), fp.SGD(0.1)
    h1 = model.fit(X, y, "softmax_cross_entropy", opt, epochs=3, lr_schedule=schedules.StepDecay(1, 0.5))
    h2 = model.fit(X, y, "softmax_cross_entropy", opt, epochs=3, lr_schedule=schedules.StepDecay(1, 0.5))
    assert h1.lr == h2.lr == [0.1, 0.05, 0.025]
    assert opt.lr == 0.1
    # a cosine shorter than the fit holds its floor instead of failing after ten epochs
    h3 = model.fit(X, y, "softmax_cross_entropy", opt, epochs=12, lr_schedule=schedules.Cosine(10))
    assert len(h3.lr) == 12 and h3.lr[10] == h3.lr[11] == 0.0
    # a schedule that goes wrong is caught before any training
    before = model.params.copy()
    with pytest.raises(ValueError, match="lr_schedule: expected a finite learning rate >= 0 for "
                                         "every epoch, got -0.1 at epoch 2"):
        model.fit(X, y, "softmax_cross_entropy", opt, epochs=4,
                  lr_schedule=lambda e, base: base if e < 2 else -0.1)
    np.testing.assert_array_equal(model.params, before)


def test_schedules_drive_the_compiled_fit():
    X, y = blobs()
    model = clf()
    h = model.fit(X, y, "softmax_cross_entropy", fp.SGD(0.2), epochs=4, shuffle=False,
                  lr_schedule=schedules.StepDecay(1, 0.5))
    assert h.lr == [0.2, 0.1, 0.05, 0.025]
    # the same as four one-epoch fits at those rates
    ref = clf()
    for lr in (0.2, 0.1, 0.05, 0.025):
        ref.fit(X, y, "softmax_cross_entropy", fp.SGD(lr), epochs=1, shuffle=False)
    np.testing.assert_allclose(model.params, ref.params, rtol=1e-6)


def test_early_stopping_restores_the_best_weights():
    X, y = blobs()

    class Recorder(fp.Callback):
        def __init__(self):
            self.params = []

        def on_epoch_end(self, model, epoch, logs):
            self.params.append(model.params.copy())

    model, rec = clf(), Recorder()
    stop = fp.EarlyStopping(monitor="val_loss", patience=2, restore_best=True)
    # a learning rate far too high makes val_loss wander, so the best epoch is not the last
    h = model.fit(X, y, "softmax_cross_entropy", fp.SGD(3.0), epochs=40, validation_split=0.3,
                  callbacks=[rec, stop])
    best = int(np.argmin(h.val_loss))
    assert stop.best_epoch == best
    assert len(h.epoch) == best + 3  # stopped after `patience` (2) epochs without improvement
    np.testing.assert_array_equal(model.params, rec.params[best])


def test_model_checkpoint_saves_improvements(tmp_path):
    X, y = blobs()
    ck = fp.ModelCheckpoint(tmp_path / "best.npz", monitor="val_accuracy")
    model = clf()
    h = model.fit(X, y, "softmax_cross_entropy", fp.Adam(0.01), epochs=6, validation_split=0.3,
                  metrics=["accuracy"], callbacks=[ck])
    acc = h.metrics["val_accuracy"]
    improved = [e for e in range(6) if acc[e] > max(acc[:e], default=-1)]
    assert ck.saved_epochs == improved
    loaded = fp.load(tmp_path / "best.npz")
    assert loaded.evaluate(X[210:], y[210:], "softmax_cross_entropy")["accuracy"] == \
        pytest.approx(acc[improved[-1]])


def test_callback_errors_name_the_argument():
    X, y = blobs()
    with pytest.raises(TypeError, match=r"callbacks\[0\]: expected an object with on_epoch_end"):
        clf().fit(X, y, "softmax_cross_entropy", callbacks=["stop"])
    with pytest.raises(ValueError, match="monitor: 'val_loss' is not among the logs"):
        clf().fit(X, y, "softmax_cross_entropy", callbacks=[fp.EarlyStopping()])


def test_progress_output(monkeypatch):
    X, y = blobs()
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    clf().fit(X, y, "softmax_cross_entropy", epochs=2, verbose=0)
    assert out.getvalue() == ""  # verbose=0 prints nothing
    clf().fit(X, y, "softmax_cross_entropy", epochs=2, verbose=1)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].startswith("epoch 1/2") and "\r" not in out.getvalue()
    out.truncate(0)
    out.seek(0)
    monkeypatch.setitem(sys.modules, "tqdm", None)  # the built-in bar
    a, b = clf(), clf()
    a.fit(X, y, "softmax_cross_entropy", epochs=2, verbose=1, progress=True, batch_size=8)
    b.fit(X, y, "softmax_cross_entropy", epochs=2, batch_size=8)
    assert "\r" in out.getvalue() and "samples/s" in out.getvalue()
    np.testing.assert_array_equal(a.params, b.params)  # chunked epochs: the same training


def test_history_prints_as_a_table():
    X, y = blobs()
    h = clf().fit(X, y, "softmax_cross_entropy", epochs=3, validation_split=0.2, metrics=["accuracy"])
    text = str(h).splitlines()
    assert text[0].split() == ["epoch", "loss", "accuracy", "val_loss", "lr", "seconds",
                               "samples_per_sec", "val_accuracy"]
    assert len(text) == 4
    assert repr(h).startswith("History(epochs=3, loss=")


def test_classification_metrics_and_monitors_need_nothing_more():
    X, y = blobs()
    ck = fp.ModelCheckpoint("/tmp/fastprop-test-ck.npz", monitor="val_accuracy")
    h = clf().fit(X, y, "softmax_cross_entropy", epochs=3, validation_split=0.25,
                  metrics=["mse", "mae", "r2"], callbacks=[ck])  # integer labels, probabilities
    assert ck.saved_epochs and len(h.metrics["val_accuracy"]) == 3
    model = clf()
    model.fit(X, y, "softmax_cross_entropy", epochs=2)
    p, onehot = model.predict(X), np.eye(3)[y]
    ev = model.evaluate(X, y, "softmax_cross_entropy", metrics=["mse", "mae", "r2"])
    assert ev["mse"] == pytest.approx(np.mean((p - onehot) ** 2))
    assert ev["mae"] == pytest.approx(np.mean(np.abs(p - onehot)))


def test_a_model_too_large_to_allocate_is_a_clear_error():
    with pytest.raises(ValueError, match="layers: a model of .* GiB"):
        fp.Sequential([fp.Dense(2**31 - 1, 2**31 - 1)])


def test_a_history_copies_and_pickles_as_lists():
    import copy
    import pickle

    from fastprop.history import History

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)), (rng.random((40, 1)) > 0.5).astype(float)
    model = fp.Sequential([fp.Dense(3, 4, "tanh"), fp.Dense(4, 1, "sigmoid")], dtype="float64")
    h = model.fit(X, y, "binary_cross_entropy", epochs=3)  # one compiled call: arrays pending
    c = copy.copy(h)
    assert c.loss == h.loss and len(c.loss) == 3
    assert h.epoch == [1, 2, 3] and c.epoch == [1, 2, 3]  # read in either order, never twice
    c.loss = [0.0]
    assert len(h.loss) == 3  # a copy's column assigned: the original keeps its own
    d = copy.deepcopy(h)
    assert d.loss == h.loss and d.loss is not h.loss
    p = pickle.loads(pickle.dumps(h))
    assert p.as_dict() == h.as_dict() and len(p) == 3
    # a History pickled by an earlier version (its columns as plain attributes)
    old = History.__new__(History)
    old.__setstate__({"epoch": [1, 2], "loss": [0.5, 0.4], "accuracy": [], "val_loss": [],
                      "lr": [0.1, 0.1], "seconds": [1.0, 1.0], "samples_per_sec": [40.0, 40.0],
                      "metrics": {"val_mae": [0.3, 0.2]}})
    assert len(old) == 2 and old.loss == [0.5, 0.4]
    assert old.metrics == {"val_mae": [0.3, 0.2]} and "loss=0.4" in repr(old)

"""Nothing breaks it: divergence stops training with the last finite weights, model files are
verified whole and read without trusting them, threads are refused or independent."""
import json
import os
import threading
import tracemalloc
import zipfile

import numpy as np
import pytest

import fastprop as fp
from test_io import rewrite, trained


def diverging(seed=0):
    X, y = fp.datasets.make_seed_dataset()
    model = fp.Sequential([fp.Dense(2, 8, "relu"), fp.Dense(8, 1)], dtype="float64", seed=seed)
    return model, X, y * 1e3


@pytest.mark.parametrize("make_opt", [lambda: fp.SGD(1e4), lambda: fp.SGD(1e3, momentum=0.9),
                                      lambda: fp.Adam(1e200)])
def test_divergence_stops_fit_with_the_weights_before_the_bad_batch(make_opt):
    model, X, y = diverging()
    twin = model.copy()
    with pytest.raises(FloatingPointError) as info:
        model.fit(X, y, "mse", make_opt(), epochs=50, batch_size=10, shuffle=False)
    message = str(info.value)
    epoch, batch = (int(v) for v in
                    __import__("re").search(r"epoch (\d+), batch (\d+) of 10", message).groups())
    assert "the model keeps its weights and optimizer state from before that batch" in message
    assert np.isfinite(model.params).all()
    # the same training, stopped by hand before that batch, gives the same weights, bit for bit
    opt = make_opt()
    if epoch > 1:
        twin.fit(X, y, "mse", opt, epochs=epoch - 1, batch_size=10, shuffle=False)
    for k in range(batch - 1):
        twin.train_step(X[10 * k:10 * k + 10], y[10 * k:10 * k + 10], "mse", opt)
    np.testing.assert_array_equal(model.params, twin.params)
    assert model.optimizer.t == opt.t
    # and the model still predicts, evaluates and saves (its weights are finite, if large)
    model.predict(X)
    model.evaluate(X, y, "mse")
    model.save(__import__("tempfile").mktemp(suffix=".npz"))


def test_divergence_is_caught_when_only_the_update_overflows():
    # finite losses, an update that overflows float32: caught after the epoch and replayed
    X = np.full((8, 1), 10.0)
    y = np.zeros((8, 1))
    model = fp.Sequential([fp.Dense(1, 1, init=[[1e30]])], seed=0)
    before = model.params.copy()
    with pytest.raises(FloatingPointError, match=r"epoch 1, batch 1 of 1"):
        model.fit(X, y, "mae", fp.SGD(1e38), epochs=1, batch_size=8, shuffle=False)
    np.testing.assert_array_equal(model.params, before)  # loss 1e31 was finite, W became -inf


def test_train_step_divergence_leaves_the_model_as_it_was():
    model, X, y = diverging()
    opt = fp.SGD(1e4)
    with pytest.raises(FloatingPointError, match="train_step: batch 1 of 1: .* the model keeps its weights and optimizer state from before that batch"):
        for _ in range(10):
            before = model.params.copy()
            model.train_step(X, y, "mse", opt)
    np.testing.assert_array_equal(model.params, before)


def test_early_stopping_never_restores_non_finite_weights():
    model, X, y = diverging()
    stop = fp.EarlyStopping(monitor="loss", patience=100, restore_best=True)
    with pytest.raises(FloatingPointError):
        model.fit(X, y, "mse", fp.SGD(1e4), epochs=50, batch_size=10, callbacks=[stop])
    assert np.isfinite(model.params).all()


def test_non_finite_weights_are_not_saved(tmp_path):
    model, _, _ = trained()
    model.params[0] = np.nan  # written into the buffer directly
    with pytest.raises(ValueError, match="params: expected finite values to save"):
        model.save(tmp_path / "m.npz")
    assert not os.listdir(tmp_path)


def test_saved_files_follow_the_umask_and_stale_temporaries_are_removed(tmp_path):
    model, _, _ = trained()
    old = os.umask(0o027)
    try:
        model.save(tmp_path / "m.npz")
    finally:
        os.umask(old)
    assert os.stat(tmp_path / "m.npz").st_mode & 0o777 == 0o640
    stale = tmp_path / ".m.npz.999999999.abcd.tmp"  # a crashed save of a process now gone
    stale.write_bytes(b"x" * 1000)
    live = tmp_path / f".m.npz.{os.getpid()}.efgh.tmp"  # a save still running
    live.write_bytes(b"y")
    model.save(tmp_path / "m.npz")
    assert not stale.exists() and live.exists()


def _zip(path, members, compress=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compress) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def _npy(array):
    import io
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def test_hostile_files_are_refused_before_anything_large_is_allocated(tmp_path):
    model, _, _ = trained()
    good = model.save(tmp_path / "good.npz")
    with zipfile.ZipFile(good) as z:
        members = {n: z.read(n) for n in z.namelist()}
    header = json.loads(np.load(good)["header"].tobytes())
    cases = []
    # a deflate bomb: a small file whose member inflates to gigabytes
    _zip(tmp_path / "bomb.npz", dict(members, **{"params.npy": b"\0" * (64 << 20)}),
         zipfile.ZIP_DEFLATED)
    cases.append(("bomb.npz", "is compressed"))
    _zip(tmp_path / "deflated.npz", members, zipfile.ZIP_DEFLATED)
    cases.append(("deflated.npz", "is compressed"))
    _zip(tmp_path / "extra.npz", dict(members, **{"evil.npy": _npy(np.zeros(3))}))
    cases.append(("extra.npz", "expected the members"))
    # a declared width of 2e7: refused from the header, nothing allocated for it
    wide = dict(header)
    wide["layers"] = [dict(header["layers"][0], n_out=20_000_000), header["layers"][1]]
    _zip(tmp_path / "wide.npz", dict(members, **{"header.npy": _npy(np.frombuffer(
        json.dumps(wide).encode(), np.uint8))}))
    cases.append(("wide.npz", "n_params is"))
    for name, hostile in (("deep", "[" * 100_000 + "]" * 100_000),
                          ("infinity", json.dumps(dict(header, dropout_step=1)).replace(
                              '"dropout_step": 1', '"dropout_step": Infinity')),
                          ("optstring", json.dumps(dict(header, optimizer="Adam")))):
        _zip(tmp_path / f"{name}.npz", dict(members, **{"header.npy": _npy(np.frombuffer(
            hostile.encode(), np.uint8))}))
    cases += [("deep.npz", "its header is not JSON"), ("infinity.npz", "checksum"),
              ("optstring.npz", "'optimizer' must be an object")]
    for name, message in cases:
        tracemalloc.start()
        with pytest.raises(ValueError) as info:
            fp.load(tmp_path / name)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert message in str(info.value) and name in str(info.value), (name, str(info.value))
        assert peak < 8 << 20, (name, peak)  # never the gigabytes a header could declare


@pytest.mark.parametrize("edit,message", [
    (lambda h, a: a["optimizer_state_1"].__setitem__(0, np.nan), "optimizer state 1 is not all"),
    (lambda h, a: a["optimizer_state_1"].__setitem__(0, -1.0), "has negative values"),
    (lambda h, a: h["optimizer"].update(t=-5), "optimizer.t must be an integer"),
    (lambda h, a: h["optimizer"].update(t=1e300), "optimizer.t must be an integer"),
    (lambda h, a: h["optimizer"].update(n_state=1), "expected the members"),
    (lambda h, a: a["params"].__setitem__(0, np.inf), "parameters are not all finite"),
    (lambda h, a: h.update(dtype="float16"), "dtype must be"),
    (lambda h, a: h["layers"][0].update(n_in=-3), "layers[0].n_in must be an integer"),
])
def test_optimizer_state_and_values_are_validated_behind_a_valid_checksum(tmp_path, edit,
                                                                          message):
    model, _, _ = trained(optimizer=fp.Adam(0.01))
    good = model.save(tmp_path / "good.npz")
    with np.load(good) as f:
        arrays = {k: f[k].copy() for k in f.files if k != "header"}

    def header(h):
        edit(h, arrays)

    if "state 1 is not" in message or "negative" in message or "finite" in message:
        edit({}, arrays)
        rewrite(good, tmp_path / "bad.npz", reseal=True, **arrays)
    else:
        rewrite(good, tmp_path / "bad.npz", header=header, reseal=True)
    with pytest.raises(ValueError) as info:
        fp.load(tmp_path / "bad.npz")
    assert message in str(info.value) and "bad.npz" in str(info.value)


def test_different_models_in_different_threads_train_exactly_as_alone():
    X = np.random.default_rng(0).normal(size=(2000, 32))
    y = np.random.default_rng(1).integers(0, 4, size=2000)
    alone = []
    for seed in (1, 2):
        m = fp.Sequential([fp.Dense(32, 64, "relu"), fp.Dense(64, 4, "softmax")], seed=seed)
        m.fit(X, y, "softmax_cross_entropy", fp.Adam(0.01), epochs=3, n_threads=1)
        alone.append(m.params.copy())
    models = [fp.Sequential([fp.Dense(32, 64, "relu"), fp.Dense(64, 4, "softmax")], seed=s)
              for s in (1, 2)]
    threads = [threading.Thread(target=m.fit, args=(X, y, "softmax_cross_entropy",
                                                    fp.Adam(0.01)),
                                kwargs=dict(epochs=3, n_threads=1)) for m in models]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for m, want in zip(models, alone):
        np.testing.assert_array_equal(m.params, want)


def test_values_beyond_float32_are_refused_without_a_stray_warning():
    import warnings
    model = fp.Sequential([fp.Dense(2, 1)], seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a RuntimeWarning beside the ValueError would fail here
        for assign in (lambda: setattr(model.layers[0], "W", [[1e39], [-1e39]]),
                       lambda: setattr(model, "params", [1e39, -1e39, 1.0]),
                       lambda: model.predict([[1e39, -1e39]])):
            with pytest.raises(ValueError, match="expected finite values, got 2 NaN or inf"):
                assign()


def test_targets_whose_squares_overflow_are_refused_before_training():
    model = fp.Sequential([fp.Dense(2, 1)], seed=0)
    before = model.params.copy()
    with pytest.raises(ValueError, match=r"y: expected targets whose squares fit in float32 for "
                                         r"mse .* got \|y\| up to 1e\+20; scale the targets"):
        model.fit(np.ones((4, 2)), np.full(4, 1e20), "mse")
    np.testing.assert_array_equal(model.params, before)
    model.fit(np.ones((4, 2)), np.full(4, 1e20), "mae", fp.SGD(1e-30))  # |a - y|: no square


def test_reading_passes_keep_a_bounded_workspace_and_a_history_free_result():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(5000, 16))
    model = fp.Sequential([fp.Dense(16, 32, "tanh"), fp.Dense(32, 2)], dtype="float64", seed=0)
    first = model.predict(X)
    model.explain(X, np.zeros((5000, 2)), "mse")
    model.loss_and_gradients(X, np.zeros((5000, 2)), "mse")
    assert model._engine.capacity <= 1024  # reading passes run in chunks: no 5,000-row engine
    np.testing.assert_array_equal(model.predict(X), first)  # the same chunks as before
    model.train_step(X, np.zeros((5000, 2)), "mse", fp.SGD(1e-12))  # a training batch this large
    assert model._engine.capacity == 5000
    model.free_workspace()
    assert model._engine is None
    np.testing.assert_allclose(model.predict(X), first, atol=1e-9)  # the tiny step aside

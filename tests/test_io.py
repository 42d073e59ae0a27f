"""Saving and loading: bit-exact round trips that resume training identically, atomic writes,
and a clear error for every kind of damaged or foreign file."""
import json
import os

import numpy as np
import pytest

import fastprop as fp


def trained(dtype="float32", optimizer=None, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(60, 4))
    y = rng.integers(0, 3, size=60)
    model = fp.Sequential([fp.Dense(4, 6, "leaky_relu", negative_slope=0.1),
                           fp.Dense(6, 3, "softmax")], dtype=dtype, seed=seed)
    model.fit(X, y, "softmax_cross_entropy", optimizer or fp.SGD(0.1), epochs=2, batch_size=16)
    return model, X, y


OPTIMIZERS = [lambda: fp.SGD(0.1), lambda: fp.SGD(0.05, momentum=0.9, nesterov=True),
              lambda: fp.Adam(0.01, weight_decay=0.01), lambda: fp.AdamW(0.01, clip_norm=1.0),
              lambda: fp.RMSprop(0.01)]


@pytest.mark.parametrize("make_opt", OPTIMIZERS)
def test_round_trip_resumes_training_identically(tmp_path, dtype, make_opt):
    model, X, y = trained(dtype, make_opt())
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = fp.load(path)
    assert loaded.dtype == model.dtype and repr(loaded) == repr(model)
    np.testing.assert_array_equal(loaded.params, model.params)
    assert repr(loaded.optimizer) == repr(model.optimizer)
    assert loaded.optimizer.t == model.optimizer.t
    # both continue for two more epochs, shuffled: the same weights, bit for bit
    model.fit(X, y, "softmax_cross_entropy", model.optimizer, epochs=2, batch_size=16)
    loaded.fit(X, y, "softmax_cross_entropy", loaded.optimizer, epochs=2, batch_size=16)
    np.testing.assert_array_equal(loaded.params, model.params)


def test_save_without_optimizer(tmp_path):
    model = fp.Sequential([fp.Dense(2, 1, "sigmoid")], dtype="float64", seed=3)
    model.save(tmp_path / "m.npz")
    loaded = fp.load(tmp_path / "m.npz")
    assert loaded.optimizer is None
    np.testing.assert_array_equal(loaded.params, model.params)


def test_a_crash_mid_save_leaves_the_previous_file(tmp_path, monkeypatch):
    model, _, _ = trained()
    path = tmp_path / "model.npz"
    model.save(path)
    before = path.read_bytes()
    saved = model.params.copy()
    model.params[...] += 1.0

    def crash(f, **arrays):
        f.write(b"PK\x03\x04 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before  # the previous file, whole
    assert os.listdir(tmp_path) == ["model.npz"]  # no temporary left behind
    np.testing.assert_array_equal(fp.load(path).params, saved)


def rewrite(path, out, header=None, reseal=False, **arrays):
    """A copy of a saved file with its header edited and/or arrays replaced; with `reseal`, its
    checksum recomputed (as someone who edits a file on purpose would), so that the reader's
    other checks are what must catch it."""
    with np.load(path) as f:
        files = {k: f[k] for k in f.files}
    h = json.loads(files["header"].tobytes())
    if header is not None:
        header(h)
    files.update(arrays)
    if reseal:
        h["sha256"] = fp.io.digest(h, [files[k] for k in ("params", "optimizer_state_0",
                                                          "optimizer_state_1") if k in files])
    files["header"] = np.frombuffer(json.dumps(h).encode(), dtype=np.uint8)
    np.savez(out, **files)
    return out


def test_damaged_and_foreign_files_give_clear_errors(tmp_path):
    model, _, _ = trained()
    good = model.save(tmp_path / "good.npz")
    data = open(good, "rb").read()
    cases = []
    (tmp_path / "truncated.npz").write_bytes(data[: len(data) // 2])
    cases.append(("truncated.npz", "cannot read it as a .npz archive"))
    (tmp_path / "text.npz").write_text("hello")
    cases.append(("text.npz", "cannot read it as a .npz archive"))
    flipped = bytearray(data)
    flipped[len(data) // 3] ^= 0xFF  # a flipped byte inside the compressed members
    (tmp_path / "flipped.npz").write_bytes(bytes(flipped))
    cases.append(("flipped.npz", "not a valid fastprop model file"))
    rewrite(good, tmp_path / "v3.npz", header=lambda h: h.update(version=3))
    cases.append(("v3.npz", "format version 3; this fastprop reads versions 1, 2"))
    rewrite(good, tmp_path / "other.npz", header=lambda h: h.update(format="keras"))
    cases.append(("other.npz", "expected format 'fastprop'"))
    edited = np.load(good)["params"].copy()
    edited[0] += 1
    rewrite(good, tmp_path / "edited.npz", params=edited)
    cases.append(("edited.npz", "do not match their checksum"))
    # the checksum covers the header too: a different activation, slope or split is caught
    for field, value in (("activation", "tanh"), ("negative_slope", 0.2), ("dropout", 0.5)):
        rewrite(good, tmp_path / f"h_{field}.npz", header=lambda h: h["layers"][0].update(
            {field: value}))
        cases.append((f"h_{field}.npz", "do not match their checksum"))
    # and behind a recomputed checksum, the structure is still checked
    rewrite(good, tmp_path / "short.npz", params=edited[:-1], reseal=True)
    cases.append(("short.npz", "member 'params' holds float32 (50,), expected float32 (51,)"))
    rewrite(good, tmp_path / "arch.npz", header=lambda h: h["layers"][1].update(n_in=5),
            reseal=True)
    cases.append(("arch.npz", "n_params is 51, its layers hold 48"))
    rewrite(good, tmp_path / "act.npz", reseal=True,
            header=lambda h: h["layers"][0].update(activation="no_such_activation"))
    cases.append(("act.npz", "architecture does not hold together"))
    rewrite(good, tmp_path / "opt.npz", reseal=True,
            header=lambda h: h["optimizer"].update({"class": "Lion"}))
    cases.append(("opt.npz", "unknown optimizer 'Lion'"))
    np.savez(tmp_path / "pickled.npz", header=np.array([{"a": 1}], dtype=object),
             params=np.zeros(3))
    cases.append(("pickled.npz", "not a valid fastprop model file"))
    np.savez(tmp_path / "bare.npz", weights=np.zeros(3))
    cases.append(("bare.npz", "expected the arrays 'header' and 'params'"))
    for name, message in cases:
        with pytest.raises(ValueError) as info:
            fp.load(tmp_path / name)
        assert message in str(info.value), (name, str(info.value))
        assert name in str(info.value)  # the error names the file
    with pytest.raises(FileNotFoundError):
        fp.load(tmp_path / "missing.npz")


def _traced_peak(fn):
    """(fn(), the peak of memory traced while it ran, in bytes): numpy reports its buffers to
    tracemalloc, including those np.zeros allocates and nothing has touched yet."""
    import tracemalloc
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        result = fn()
        return result, tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


@pytest.fixture(scope="module")
def large(tmp_path_factory):
    """A float32 model of 32 MB and its file."""
    model = fp.Sequential([fp.Dense(2000, 4000, "relu"), fp.Dense(4000, 10, "softmax")], seed=0)
    return model, model.save(tmp_path_factory.mktemp("large") / "large.npz")


def test_loading_needs_little_more_memory_than_the_model(large):
    model, path = large
    n_bytes = model.params.nbytes
    loaded, peak = _traced_peak(lambda: fp.load(path))
    np.testing.assert_array_equal(loaded.params, model.params)
    # the new model's params and grads (allocated, never touched) and a chunk being read
    assert peak <= 2.2 * n_bytes, f"peak {peak / n_bytes:.2f}x the parameters' bytes"


@pytest.mark.parametrize("how", ["deepcopy", "unpickle"])
def test_copies_hold_one_serialized_copy_at_most(large, how):
    import copy
    import pickle
    model, _ = large
    n_bytes = model.params.nbytes
    if how == "deepcopy":
        clone, peak = _traced_peak(lambda: copy.deepcopy(model))
    else:
        data = pickle.dumps(model)
        clone, peak = _traced_peak(lambda: pickle.loads(data))
    np.testing.assert_array_equal(clone.params, model.params)
    # the file's bytes, then the new params and grads (the grads never touched: in resident
    # memory the peak is about 2x)
    assert peak <= 3.2 * n_bytes, f"{how}: peak {peak / n_bytes:.2f}x the parameters' bytes"


def test_loading_draws_no_weights(tmp_path, monkeypatch):
    model, _, _ = trained(optimizer=fp.Adam(0.01))
    path = model.save(tmp_path / "m.npz")

    def no_draws(self, rng):
        raise AssertionError("loading drew initial weights that the file then overwrites")

    monkeypatch.setattr(fp.Dense, "_initialize", no_draws)
    loaded = fp.load(path)
    np.testing.assert_array_equal(loaded.params, model.params)
    np.testing.assert_array_equal(loaded._optimizer_state.buffers[1],
                                  model._optimizer_state.buffers[1])


def test_version_1_files_load_with_the_shuffle_state_their_seed_draws(tmp_path):
    import hashlib
    model, _, _ = trained(seed=5)
    good = model.save(tmp_path / "v2.npz")

    def to_version_1(h):  # its checksum covered the parameters alone; no shuffle state
        for key in ("sha256", "shuffle_seed", "shuffle_count"):
            del h[key]
        h.update(version=1, params_sha256=hashlib.sha256(model.params.tobytes()).hexdigest())

    loaded = fp.load(rewrite(good, tmp_path / "v1.npz", header=to_version_1))
    np.testing.assert_array_equal(loaded.params, model.params)
    fresh = fp.Sequential([fp.Dense(4, 6, "leaky_relu", negative_slope=0.1),
                           fp.Dense(6, 3, "softmax")], seed=5)
    assert loaded._shuffle_state.tolist() == fresh._shuffle_state.tolist()
    assert loaded._dropout_state.tolist() == model._dropout_state.tolist()

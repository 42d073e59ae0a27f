"""Saving and loading models: a documented, versioned format that loading never unpickles.

A fastprop file is a NumPy .npz archive (read with allow_pickle=False) holding:
- `header`: UTF-8 JSON as uint8 bytes: {"format": "fastprop", "version": 1, "dtype",
  "layers": [{"n_in", "n_out", "activation", "negative_slope", "init"}], "seed", "rng_state"
  (the shuffling generator, so that training resumes identically), "n_params",
  "params_sha256", "optimizer": null or {"class", "config", "t", "n_state"}};
- `params`: the flat parameter buffer;
- `optimizer_state_0`, `optimizer_state_1`: the optimizer's state buffers, when it has them.
The write is atomic: a temporary file in the target's directory, flushed and fsync'ed, then
renamed over the target; a crash leaves the previous file whole.
"""
import hashlib
import json
import os
import tempfile
import zipfile

import numpy as np

FORMAT = "fastprop"
VERSION = 1


def save(model, path, optimizer=None):
    """Writes `model` (and `optimizer`, by default the one its last fit used) to `path`."""
    from .optimizers import Optimizer

    path = os.fspath(path)
    optimizer = optimizer if optimizer is not None else getattr(model, "optimizer", None)
    if optimizer is not None and not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer: expected a fastprop optimizer, got {type(optimizer).__name__}")
    arrays = {"params": model.params}
    opt = None
    if optimizer is not None:
        s1, s2 = optimizer.state_buffers(model)
        state = [s for s in (s1, s2) if s is not None]
        for i, s in enumerate(state):
            arrays[f"optimizer_state_{i}"] = s
        opt = {"class": type(optimizer).__name__, "config": optimizer.get_config(),
               "t": int(optimizer.t), "n_state": len(state)}
    header = {
        "format": FORMAT, "version": VERSION, "dtype": model.dtype.name,
        "layers": [{"n_in": l.n_in, "n_out": l.n_out, "activation": l.activation,
                    "negative_slope": l.negative_slope, "init": l.init, "dropout": l.dropout}
                   for l in model.layers],
        "dropout_seed": model._dropout_seed, "dropout_step": model._dropout_step,
        "seed": model.seed if isinstance(model.seed, (int, type(None))) else None,
        "rng_state": model._rng.bit_generator.state,
        "n_params": int(model.params.size),
        "params_sha256": hashlib.sha256(model.params.tobytes()).hexdigest(),
        "optimizer": opt,
    }
    arrays["header"] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".fastprop-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
    return path


def _bad(path, what):
    return ValueError(f"{path}: not a valid fastprop model file: {what}")


def load(path):
    """The model saved at `path`; its optimizer, if one was saved, as `model.optimizer`."""
    from . import optimizers
    from .layers import Dense, Dropout
    from .model import Sequential

    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            files = {name: archive[name] for name in archive.files}
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as exc:
        raise _bad(path, f"cannot read it as a .npz archive ({exc})") from None
    if "header" not in files or "params" not in files:
        raise _bad(path, f"expected the arrays 'header' and 'params', found {sorted(files)}")
    try:
        header = json.loads(files["header"].astype(np.uint8).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _bad(path, f"its header is not JSON ({exc})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise _bad(path, f"expected format '{FORMAT}' in the header, got {header.get('format')!r}"
                   if isinstance(header, dict) else "the header is not a JSON object")
    if header.get("version") != VERSION:
        raise _bad(path, f"format version {header.get('version')!r}; this fastprop reads "
                   f"version {VERSION}")
    try:
        layers = []
        for d in header["layers"]:
            layers.append(Dense(d["n_in"], d["n_out"], d["activation"],
                                negative_slope=d["negative_slope"],
                                init=d["init"] if d["init"] != "array" else "zeros"))
            if d.get("dropout"):
                layers.append(Dropout(d["dropout"]))
        model = Sequential(layers, dtype=header["dtype"], seed=header.get("seed"))
    except (KeyError, TypeError, ValueError) as exc:
        raise _bad(path, f"its architecture does not hold together ({exc})") from None
    params = files["params"]
    if params.shape != model.params.shape or params.dtype != model.dtype:
        raise _bad(path, f"expected {model.params.size} {model.dtype.name} parameters for its "
                   f"layers, got {params.size} {params.dtype.name}")
    if hashlib.sha256(params.tobytes()).hexdigest() != header.get("params_sha256"):
        raise _bad(path, "the parameters do not match their checksum (edited or damaged)")
    model.params[...] = params
    try:
        model._rng.bit_generator.state = header["rng_state"]
        model._dropout_seed = int(header.get("dropout_seed", model._dropout_seed))
        model._dropout_step = int(header.get("dropout_step", 0))
    except (KeyError, TypeError, ValueError) as exc:
        raise _bad(path, f"its random generator state is unreadable ({exc})") from None
    model.optimizer = None
    opt = header.get("optimizer")
    if opt is not None:
        cls = {c.__name__: c for c in (optimizers.SGD, optimizers.Adam, optimizers.AdamW,
                                       optimizers.RMSprop)}.get(opt.get("class"))
        if cls is None:
            raise _bad(path, f"unknown optimizer {opt.get('class')!r}")
        try:
            optimizer = cls(**opt["config"])
        except (KeyError, TypeError, ValueError) as exc:
            raise _bad(path, f"its optimizer's settings are invalid ({exc})") from None
        s1, s2 = optimizer.state_buffers(model)
        for i, buf in enumerate(b for b in (s1, s2) if b is not None):
            saved = files.get(f"optimizer_state_{i}")
            if saved is None or saved.shape != buf.shape or saved.dtype != buf.dtype:
                raise _bad(path, f"optimizer state {i} is missing or has the wrong shape")
            buf[...] = saved
        optimizer.t = int(opt.get("t", 0))
        model.optimizer = optimizer
    return model

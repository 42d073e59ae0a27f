"""The file format of a saved model: documented, versioned, and never unpickled.

A fastprop file is a NumPy .npz archive (read with allow_pickle=False) holding:
- `header`: UTF-8 JSON as uint8 bytes: {"format": "fastprop", "version": 1, "dtype", "layers":
  [{"n_in", "n_out", "activation", "negative_slope", "init", "dropout"}], "seed", "rng_state"
  (the shuffling generator, so that training resumes identically), "dropout_seed",
  "dropout_step", "n_params", "params_sha256", "optimizer": null or {"class", "config", "t",
  "n_state"}};
- `params`: the flat parameter buffer;
- `optimizer_state_0`, `optimizer_state_1`: the optimizer's state buffers, when it has them.
The write is atomic: a temporary file in the target's directory, flushed and fsync'ed, then
renamed over the target; a crash leaves the previous file whole. Pickling a model (and so
copy.deepcopy and joblib) uses the same bytes, in memory.
"""
import hashlib
import io as _io
import json
import os
import tempfile
import zipfile

import numpy as np

from .layers import LayerSpec
from .optimizers import OPTIMIZERS, Optimizer, OptimizerState

FORMAT = "fastprop"
VERSION = 1


def _arrays(model, optimizer=None):
    """The archive's arrays for `model` and its optimizer state."""
    if optimizer is not None and optimizer is not model.optimizer:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer: expected a fastprop optimizer, got "
                            f"{type(optimizer).__name__}")
        raise ValueError("optimizer: expected the optimizer this model trained with last (its "
                         "state belongs to the model) or None; this one has not trained it")
    optimizer, state = model.optimizer, model._optimizer_state
    arrays = {"params": model.params}
    opt = None
    if optimizer is not None:
        for i, buf in enumerate(state.buffers):
            arrays[f"optimizer_state_{i}"] = buf
        opt = {"class": type(optimizer).__name__, "config": optimizer.get_config(),
               "t": state.t, "n_state": len(state.buffers)}
    header = {
        "format": FORMAT, "version": VERSION, "dtype": model.dtype.name,
        "layers": [{"n_in": s.n_in, "n_out": s.n_out, "activation": s.activation,
                    "negative_slope": s.negative_slope, "init": l.init, "dropout": s.dropout_rate}
                   for s, l in zip(model.architecture, model.layers)],
        "dropout_seed": model._dropout_seed, "dropout_step": model._dropout_step,
        "seed": model.seed,
        "rng_state": model._rng.bit_generator.state,
        "n_params": int(model.params.size),
        "params_sha256": hashlib.sha256(model.params.tobytes()).hexdigest(),
        "optimizer": opt,
    }
    arrays["header"] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    return arrays


def save(model, path, optimizer=None):
    """Writes `model` with its optimizer state to `path`, atomically; returns the path."""
    path = os.fspath(path)
    arrays = _arrays(model, optimizer)
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


def to_bytes(model):
    """The file's bytes, in memory (what pickling a model stores)."""
    buffer = _io.BytesIO()
    np.savez(buffer, **_arrays(model))
    return buffer.getvalue()


def from_bytes(data, model_class):
    """The model that to_bytes wrote, rebuilt as a `model_class`."""
    return read(_io.BytesIO(data), "pickled fastprop model", model_class)


def load(path, model_class):
    """The model saved at `path`, rebuilt as a `model_class`; its optimizer, if one was saved,
    as `model.optimizer`, with its state."""
    path = os.fspath(path)
    return read(path, path, model_class)


def _bad(name, what):
    return ValueError(f"{name}: not a valid fastprop model file: {what}")


def read(source, name, model_class):
    """The model in `source` (a path or a file object; `name` names it in errors), rebuilt as a
    `model_class` (Sequential) once everything in the file has been checked."""
    try:
        with np.load(source, allow_pickle=False) as archive:
            files = {key: archive[key] for key in archive.files}
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as exc:
        raise _bad(name, f"cannot read it as a .npz archive ({exc})") from None
    if "header" not in files or "params" not in files:
        raise _bad(name, f"expected the arrays 'header' and 'params', found {sorted(files)}")
    try:
        header = json.loads(files["header"].astype(np.uint8).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _bad(name, f"its header is not JSON ({exc})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise _bad(name, f"expected format '{FORMAT}' in the header, got {header.get('format')!r}"
                   if isinstance(header, dict) else "the header is not a JSON object")
    if header.get("version") != VERSION:
        raise _bad(name, f"format version {header.get('version')!r}; this fastprop reads "
                   f"version {VERSION}")
    try:
        layers = header["layers"]
        architecture = [LayerSpec(d["n_in"], d["n_out"], d["activation"], d["negative_slope"],
                                  d.get("dropout", 0.0)) for d in layers]
        model = model_class.from_architecture(architecture, header["dtype"], header.get("seed"),
                                             [d["init"] for d in layers])
    except (KeyError, TypeError, ValueError) as exc:
        raise _bad(name, f"its architecture does not hold together ({exc})") from None
    params = files["params"]
    if params.shape != model.params.shape or params.dtype != model.dtype:
        raise _bad(name, f"expected {model.params.size} {model.dtype.name} parameters for its "
                   f"layers, got {params.size} {params.dtype.name}")
    if hashlib.sha256(params.tobytes()).hexdigest() != header.get("params_sha256"):
        raise _bad(name, "the parameters do not match their checksum (edited or damaged)")
    try:
        rng = np.random.default_rng()
        rng.bit_generator.state = header["rng_state"]
        dropout = np.array([int(header["dropout_seed"]), int(header["dropout_step"])], np.uint64)
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise _bad(name, f"its random generator state is unreadable ({exc})") from None
    optimizer = state = None
    opt = header.get("optimizer")
    if opt is not None:
        if not isinstance(opt, dict) or opt.get("class") not in OPTIMIZERS:
            what = opt.get("class") if isinstance(opt, dict) else opt
            raise _bad(name, f"unknown optimizer {what!r}")
        try:
            optimizer = OPTIMIZERS[opt["class"]](**opt["config"])
            t = int(opt["t"])
        except (KeyError, TypeError, ValueError) as exc:
            raise _bad(name, f"its optimizer's settings are invalid ({exc})") from None
        state = OptimizerState(optimizer.n_state, model.params)
        for i, buf in enumerate(state.buffers):
            saved = files.get(f"optimizer_state_{i}")
            if saved is None or saved.shape != buf.shape or saved.dtype != buf.dtype:
                raise _bad(name, f"optimizer state {i} is missing or has the wrong shape")
            buf[...] = saved
        if t < 0:
            raise _bad(name, f"optimizer step count {t} is negative")
        state.steps[0] = t
    # everything read and checked: fill the model
    model.params[...] = params
    model._rng = rng
    model._dropout_state[...] = dropout
    if optimizer is not None:
        model._bind(optimizer, 1, state)
    return model

"""The file format of a saved model: documented, versioned, verified whole, never unpickled.

A fastprop file is a NumPy .npz archive of uncompressed members, read without pickle:
- `header`: UTF-8 JSON as uint8 bytes: {"format": "fastprop", "version": 2, "dtype", "layers":
  [{"n_in", "n_out", "activation", "negative_slope", "alpha", "init", "dropout"}] (a file
  without "alpha" reads as 1.0), "seed", "rng_state"
  (the initialization generator), "dropout_seed", "dropout_step", "shuffle_seed",
  "shuffle_count" (fit's counter-based shuffles, so that training resumes identically),
  "n_params", "optimizer": null or {"class", "config", "t", "n_state"}, "sha256"};
- `params`: the flat parameter buffer;
- `optimizer_state_0`, `optimizer_state_1`: the optimizer's state buffers, when it has them.
"sha256" is the SHA-256 of the header without it (as canonical JSON) followed by every array's
bytes in that order: a damaged or edited file, header included, fails it. Version 1 files (whose
checksum covers the parameters alone) are read too.

Reading trusts nothing: only the expected members are read, their sizes and shapes are checked
against the header, against the file and against sane limits before anything is allocated, and
every value is checked (finite parameters; optimizer state finite, second moments >= 0, a step
count >= 0). Every failure is a ValueError that names the file and what is wrong.

The write is atomic: a temporary file beside the target, flushed and fsync'ed, then renamed over
it, with the permissions an ordinary write gets (the umask); a crash leaves the previous file
whole, and the next save to that path removes a temporary file a crashed save left behind.
Pickling a model (and so copy.deepcopy and joblib) stores the same bytes.
"""
import glob
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
VERSION = 2
READS = (1, 2)
MAX_HEADER_BYTES = 1 << 20          # the JSON header
MAX_LAYERS = 10_000
MAX_PARAMS = 1 << 36                 # 256 GiB of float32: beyond any model this library trains
_STATE = ("optimizer_state_0", "optimizer_state_1")


def digest(header, arrays):
    """The file's SHA-256: the header without its "sha256" (canonical JSON), then each array."""
    h = hashlib.sha256(json.dumps({k: v for k, v in header.items() if k != "sha256"},
                                  sort_keys=True, separators=(",", ":")).encode("utf-8"))
    for array in arrays:
        h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()


def _arrays(model, optimizer=None):
    """The archive's members for `model` and its optimizer state."""
    if optimizer is not None and optimizer is not model.optimizer:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer: expected a fastprop optimizer, got "
                            f"{type(optimizer).__name__}")
        raise ValueError("optimizer: expected the optimizer this model trained with last (its "
                         "state belongs to the model) or None; this one has not trained it")
    if not np.isfinite(model.params).all():
        raise ValueError("params: expected finite values to save, got NaN or inf (written into "
                         "model.params directly?)")
    optimizer, state = model.optimizer, model._optimizer_state
    arrays = {"params": model.params}
    opt = None
    if optimizer is not None:
        for name, buf in zip(_STATE, state.buffers):
            arrays[name] = buf
        opt = {"class": type(optimizer).__name__, "config": optimizer.get_config(),
               "t": state.t, "n_state": len(state.buffers)}
    header = {
        "format": FORMAT, "version": VERSION, "dtype": model.dtype.name,
        "layers": [{"n_in": s.n_in, "n_out": s.n_out, "activation": s.activation,
                    "negative_slope": s.negative_slope, "alpha": s.alpha, "init": l.init,
                    "dropout": s.dropout_rate}
                   for s, l in zip(model.architecture, model.layers)],
        "dropout_seed": model._dropout_seed, "dropout_step": model._dropout_step,
        "shuffle_seed": int(model._shuffle_state[0]), "shuffle_count": int(model._shuffle_state[1]),
        "seed": model.seed,
        "rng_state": model._rng.bit_generator.state,
        "n_params": int(model.params.size),
        "optimizer": opt,
    }
    header["sha256"] = digest(header, arrays.values())
    arrays["header"] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    return arrays


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def save(model, path, optimizer=None):
    """Writes `model` with its optimizer state to `path`, atomically; returns the path."""
    from ._validation import check_path
    path = check_path("path", path)
    arrays = _arrays(model, optimizer)
    return write_atomically(path, lambda f: np.savez(f, **arrays))


def write_atomically(path, write):
    """Calls write(f) on a temporary file beside `path`, flushes, fsyncs and renames it over
    `path` (with the umask's permissions), removing what a crashed write left; returns path."""
    directory = os.path.dirname(os.path.abspath(path))
    prefix = f".{os.path.basename(path)}."
    for stale in glob.glob(os.path.join(glob.escape(directory), glob.escape(prefix) + "*.tmp")):
        try:  # a temporary file of a save that crashed: its process is gone
            pid = int(os.path.basename(stale)[len(prefix):].split(".")[0])
            if not _pid_alive(pid):
                os.unlink(stale)
        except (ValueError, OSError):
            pass
    fd, tmp = tempfile.mkstemp(prefix=f"{prefix}{os.getpid()}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fchmod(f.fileno(), 0o666 & ~_umask())  # mkstemp made it 0600
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
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError(f"data: expected the bytes of a fastprop model, got {type(data).__name__}")
    return read(_io.BytesIO(data), "pickled fastprop model", model_class)


def load(path, model_class):
    """The model saved at `path`, rebuilt as a `model_class`; its optimizer, if one was saved,
    as `model.optimizer`, with its state."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    return read(path, path, model_class)


class _Bad(Exception):
    """What is wrong with a file, raised inside the reader and reported as a ValueError."""


def _need(ok, what):
    if not ok:
        raise _Bad(what)


def _int(value, name, low, high):
    _need(isinstance(value, int) and not isinstance(value, bool) and low <= value <= high,
          f"{name} must be an integer in [{low}, {high}], got {value!r}")
    return value


def _number(value, name):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    try:
        ok = ok and bool(np.isfinite(float(value)))
    except OverflowError:
        ok = False
    _need(ok, f"{name} must be a finite number, got {str(value)[:40]}")
    return float(value)


def _member(archive, name, expected_shape, dtype):
    """An array member, read only after its size, npy header, dtype and shape are checked."""
    info = archive.getinfo(name + ".npy")
    _need(info.compress_type == zipfile.ZIP_STORED,
          f"member {name!r} is compressed; fastprop files store arrays uncompressed")
    with archive.open(info) as f:
        try:
            version = np.lib.format.read_magic(f)
            _need(version in ((1, 0), (2, 0)), f"member {name!r} has npy version {version}")
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0) else
                           np.lib.format.read_array_header_2_0)
            shape, fortran, got_dtype = read_header(f, max_header_size=10000)
        except ValueError as exc:
            raise _Bad(f"member {name!r} is not a NumPy array ({exc})") from None
        _need(not got_dtype.hasobject and got_dtype == dtype and not fortran and
              tuple(shape) == tuple(expected_shape),
              f"member {name!r} holds {got_dtype} {tuple(shape)}, expected {np.dtype(dtype)} "
              f"{tuple(expected_shape)}")
        n_bytes = int(np.prod(expected_shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        _need(info.file_size - f.tell() == n_bytes,
              f"member {name!r} has {info.file_size - f.tell()} bytes of data, expected {n_bytes}")
        data = f.read(n_bytes)
    _need(len(data) == n_bytes, f"member {name!r} is truncated")
    return np.frombuffer(data, dtype=dtype).reshape(expected_shape).copy()


def _header(archive):
    names = set(archive.namelist())
    _need("header.npy" in names and "params.npy" in names,
          f"expected the arrays 'header' and 'params', found "
          f"{sorted(n[:-4] if n.endswith('.npy') else n for n in names)}")
    info = archive.getinfo("header.npy")
    _need(info.file_size <= MAX_HEADER_BYTES, f"its header is {info.file_size} bytes, more than "
          f"{MAX_HEADER_BYTES}")
    with archive.open(info) as f:
        try:
            np.lib.format.read_magic(f)
        except ValueError as exc:
            raise _Bad(f"member 'header' is not a NumPy array ({exc})") from None
    raw = _member_bytes(archive, info)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValueError) as exc:
        raise _Bad(f"its header is not JSON ({type(exc).__name__}: {str(exc)[:100]})") from None
    _need(isinstance(header, dict), "the header is not a JSON object")
    _need(header.get("format") == FORMAT,
          f"expected format '{FORMAT}' in the header, got {header.get('format')!r}")
    _need(header.get("version") in READS, f"format version {header.get('version')!r}; this "
          f"fastprop reads versions {', '.join(map(str, READS))}")
    return header, names


def _member_bytes(archive, info):
    """The data bytes of the uint8 header member (a 1-D uint8 npy array)."""
    with archive.open(info) as f:
        version = np.lib.format.read_magic(f)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0) else
                       np.lib.format.read_array_header_2_0)
        try:
            shape, fortran, dtype = read_header(f, max_header_size=10000)
        except ValueError as exc:
            raise _Bad(f"member 'header' is not a NumPy array ({exc})") from None
        _need(dtype == np.uint8 and len(shape) == 1 and
              shape[0] == info.file_size - f.tell(), "member 'header' is not the header's bytes")
        return f.read(shape[0])


def _architecture(header):
    layers = header.get("layers")
    _need(isinstance(layers, list) and 1 <= len(layers) <= MAX_LAYERS,
          f"'layers' must be a list of 1 to {MAX_LAYERS} layers")
    specs, inits, n_params = [], [], 0
    for i, d in enumerate(layers):
        _need(isinstance(d, dict), f"layers[{i}] must be an object")
        n_in = _int(d.get("n_in"), f"layers[{i}].n_in", 1, 2**31 - 1)
        n_out = _int(d.get("n_out"), f"layers[{i}].n_out", 1, 2**31 - 1)
        _need(isinstance(d.get("activation"), str) and isinstance(d.get("init"), str),
              f"layers[{i}]: activation and init must be names")
        slope = _number(d.get("negative_slope"), f"layers[{i}].negative_slope")
        rate = _number(d.get("dropout", 0.0), f"layers[{i}].dropout")
        alpha = _number(d.get("alpha", 1.0), f"layers[{i}].alpha")
        n_params += n_in * n_out + n_out
        _need(n_params <= MAX_PARAMS, f"its layers hold more than {MAX_PARAMS} parameters")
        specs.append(LayerSpec(n_in, n_out, d["activation"], slope, rate, alpha))
        inits.append(d["init"])
    return specs, inits, n_params


def read(source, name, model_class):
    """The model in `source` (a path or a file object; `name` names it in errors), rebuilt as a
    `model_class` (Sequential) once everything in the file has been checked."""
    try:
        return _read(source, model_class)
    except _Bad as exc:
        raise ValueError(f"{name}: not a valid fastprop model file: {exc}") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, KeyError,
            ValueError, OverflowError, RecursionError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ValueError(f"{name}: not a valid fastprop model file: cannot read it as a .npz "
                         f"archive ({type(exc).__name__}: {str(exc)[:200]})") from None


def _read(source, model_class):
    size = os.path.getsize(source) if isinstance(source, str) else len(source.getbuffer())
    with zipfile.ZipFile(source) as archive:
        for info in archive.infolist():
            _need(info.compress_type == zipfile.ZIP_STORED, f"member {info.filename!r} is "
                  f"compressed; fastprop files store arrays uncompressed")
        _need(sum(i.file_size for i in archive.infolist()) <= size,
              "its members declare more bytes than the file holds")
        header, names = _header(archive)
        version = header["version"]
        dtype = header.get("dtype")
        _need(dtype in ("float32", "float64"), f"dtype must be 'float32' or 'float64', got "
              f"{dtype!r}")
        specs, inits, n_params = _architecture(header)
        _need(header.get("n_params", n_params) == n_params,
              f"n_params is {header.get('n_params')!r}, its layers hold {n_params}")
        opt = header.get("optimizer")
        n_state = 0
        if opt is not None:
            _need(isinstance(opt, dict), "'optimizer' must be an object or null")
            _need(isinstance(opt.get("class"), str) and opt["class"] in OPTIMIZERS,
                  f"unknown optimizer {str(opt.get('class'))[:40]!r}")
            n_state = _int(opt.get("n_state"), "optimizer.n_state", 0, 2)
        expected = {"header.npy", "params.npy"} | {s + ".npy" for s in _STATE[:n_state]}
        _need(names == expected, f"expected the members {sorted(expected)}, found "
              f"{sorted(names)}")
        params = _member(archive, "params", (n_params,), dtype)
        state_arrays = [_member(archive, s, (n_params,), dtype) for s in _STATE[:n_state]]
    if version == 1:
        _need(hashlib.sha256(params.tobytes()).hexdigest() == header.get("params_sha256"),
              "the parameters do not match their checksum (edited or damaged)")
    else:
        _need(digest(header, [params] + state_arrays) == header.get("sha256"),
              "its contents do not match their checksum (edited or damaged)")
    _need(np.isfinite(params).all(), "its parameters are not all finite")
    try:
        model = model_class.from_architecture(specs, dtype, header.get("seed"), inits)
    except (TypeError, ValueError) as exc:
        raise _Bad(f"its architecture does not hold together ({exc})") from None
    try:
        rng = np.random.default_rng()
        rng.bit_generator.state = header["rng_state"]
        dropout = np.array([_int(header["dropout_seed"], "dropout_seed", 0, 2**64 - 1),
                            _int(header["dropout_step"], "dropout_step", 0, 2**62)], np.uint64)
        shuffle = None
        if "shuffle_seed" in header or version >= 2:
            shuffle = np.array([_int(header["shuffle_seed"], "shuffle_seed", 0, 2**64 - 1),
                                _int(header["shuffle_count"], "shuffle_count", 0, 2**62)],
                               np.uint64)
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise _Bad(f"its random generator state is unreadable ({type(exc).__name__}: "
                   f"{str(exc)[:100]})") from None
    optimizer = state = None
    if opt is not None:
        config = opt.get("config")
        _need(isinstance(config, dict), "optimizer.config must be an object")
        try:
            optimizer = OPTIMIZERS[opt["class"]](**config)
        except (TypeError, ValueError, OverflowError) as exc:
            raise _Bad(f"its optimizer's settings are invalid ({exc})") from None
        _need(optimizer.n_state == n_state, f"optimizer.n_state is {n_state}, a "
              f"{opt['class']} with these settings keeps {optimizer.n_state}")
        state = OptimizerState(n_state, model.params)
        for i, (buf, saved) in enumerate(zip(state.buffers, state_arrays)):
            _need(np.isfinite(saved).all(), f"optimizer state {i} is not all finite")
            buf[...] = saved
        squares = {"Adam": 1, "AdamW": 1, "RMSprop": 0}.get(opt["class"])
        if squares is not None:
            _need((state.buffers[squares] >= 0).all(),
                  f"optimizer state {squares} (a mean of squares) has negative values")
        state.steps[0] = _int(opt.get("t"), "optimizer.t", 0, 2**62)
    # everything read and checked: fill the model
    model.params[...] = params
    model._rng = rng
    model._dropout_state[...] = dropout
    if shuffle is not None:
        model._shuffle_state[...] = shuffle
    if optimizer is not None:
        model._bind(optimizer, 1, state)
    return model

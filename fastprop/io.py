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
count >= 0). Every failure is a ValueError that names the file and what is wrong. The arrays are
read straight into the new model's buffers (whose weights are never drawn), so that loading
needs little more memory than the model itself.

The write is atomic: a temporary file beside the target, flushed and fsync'ed, then renamed over
it. A new file gets the permissions an ordinary write gets (the umask), an existing one keeps its
mode, and a symlink keeps pointing to the file it names, which is the one replaced. A crash
leaves the previous file whole, and the next save to that path removes a temporary file a
crashed save left behind. Pickling a model (and so copy.deepcopy and joblib) stores the same
bytes.
"""
from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import io as _io
import json
import os
import secrets
import stat
import zipfile
from typing import IO, TYPE_CHECKING, Any, Callable, Iterable, NoReturn

import numpy as np

from ._validation import INT_MAX, count_not_finite
from .layers import LayerSpec
from .optimizers import OPTIMIZERS, Optimizer, OptimizerState

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from .model import Sequential

__all__ = ["save", "load", "read", "to_bytes", "from_bytes", "write_atomically", "digest", "FORMAT",
           "VERSION"]

FORMAT = "fastprop"
VERSION = 2
READS = (1, 2)
MAX_HEADER_BYTES = 1 << 20          # the JSON header
MAX_LAYERS = 10_000
MAX_PARAMS = 1 << 36                 # 256 GiB of float32: beyond any model this library trains
_STATE = ("optimizer_state_0", "optimizer_state_1")


def digest(header: dict[str, Any], arrays: Iterable[NDArray[Any]]) -> str:
    """The file's SHA-256: the header without its "sha256" (canonical JSON), then each array."""
    h = hashlib.sha256(json.dumps({k: v for k, v in header.items() if k != "sha256"},
                                  sort_keys=True, separators=(",", ":")).encode("utf-8"))
    for array in arrays:
        h.update(np.ascontiguousarray(array).data.cast("B"))  # no copy
    return h.hexdigest()


def _arrays(model: Sequential, optimizer: Optimizer | None = None) -> dict[str, NDArray[Any]]:
    """The archive's members for `model` and its optimizer state."""
    if optimizer is not None and optimizer is not model.optimizer:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer: expected a fastprop optimizer, got "
                            f"{type(optimizer).__name__}")
        raise ValueError("optimizer: expected the optimizer this model trained with last (its "
                         "state belongs to the model) or None; this one has not trained it")
    if count_not_finite(model.params):
        raise ValueError("params: expected finite values to save, got NaN or inf (written into "
                         "model.params directly?)")
    arrays, fields = _state_members(model)
    optimizer = model.optimizer
    opt = None
    if optimizer is not None:
        n_state = len(model._optimizer_state.buffers)  # type: ignore[union-attr]
        opt = {"class": type(optimizer).__name__, "config": optimizer.get_config(),
               "t": fields.pop("t"), "n_state": n_state}
    header = {
        "format": FORMAT, "version": VERSION, "dtype": model.dtype.name,
        "layers": [{"n_in": s.n_in, "n_out": s.n_out, "activation": s.activation,
                    "negative_slope": s.negative_slope, "alpha": s.alpha, "init": l.init,
                    "dropout": s.dropout_rate}
                   for s, l in zip(model.architecture, model.layers)],
        **fields,
        "seed": model.seed,
        "rng_state": model._rng.bit_generator.state,
        "n_params": int(model.params.size),
        "optimizer": opt,
    }
    header["sha256"] = digest(header, arrays.values())
    arrays["header"] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    return arrays


def _state_members(model: Sequential) -> tuple[dict[str, NDArray[Any]], dict[str, int]]:
    """The training state as the file holds it, iterating model._state(): its buffers shaped
    like the parameters as members, its counters as header fields; the gradients are not saved
    (the next step computes them anew). A state the format has no place for is an error."""
    members: dict[str, NDArray[Any]] = {}
    fields: dict[str, int] = {}
    for name, arr in model._state():
        if name == "params" or name.startswith("optimizer_state_"):
            members[name] = arr
        elif name in ("dropout_state", "shuffle_state"):
            kind = name.split("_")[0]
            fields[f"{kind}_seed"] = int(arr[0])
            fields[f"{kind}_step" if kind == "dropout" else f"{kind}_count"] = int(arr[1])
        elif name == "optimizer_steps":
            fields["t"] = int(arr[0])
        elif name != "grads":
            raise ValueError(f"training state {name!r}: the file format has no place for it")
    return members, fields


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def save(model: Sequential, path: str | os.PathLike[str], optimizer: Optimizer | None = None) -> str:
    """Writes `model` with its optimizer state to `path`, atomically; returns the path."""
    from ._validation import check_path
    checked = check_path("path", path)
    arrays = _arrays(model, optimizer)
    return write_atomically(checked, lambda f: np.savez(f, **arrays))  # type: ignore[arg-type]


def write_atomically(path: str | os.PathLike[str], write: Callable[[IO[bytes]], object]) -> str:
    """Calls write(f) on a temporary file beside the file `path` names, flushes, fsyncs and
    renames it over that file, removing what a crashed write left; returns `path`.

    Through a symlink, the file it points to is replaced and the link kept; an existing file
    keeps its mode, a new one gets the umask's. An empty or directory path is refused before
    anything is written, and an OSError names `path`, not the temporary file."""
    from ._validation import check_path
    path = check_path("path", path)
    target = os.path.realpath(path)  # the file itself: renaming over a link would replace it
    directory, name = os.path.split(target)
    try:
        _remove_stale(directory, name)
        try:
            mode = stat.S_IMODE(os.stat(target).st_mode)
        except FileNotFoundError:
            mode = None  # a new file: os.open's 0o666 less the umask
        fd, tmp = _create_beside(directory, name)
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
                f.flush()
                if mode is not None:
                    os.fchmod(f.fileno(), mode)
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            if os.path.lexists(tmp):
                os.unlink(tmp)
            raise
    except OSError as exc:
        if exc.errno is None:
            raise
        raise OSError(exc.errno, exc.strerror, path) from exc  # FileNotFoundError etc. again
    try:  # make the rename itself durable
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
    return path


def _remove_stale(directory: str, name: str) -> None:
    """Removes the temporary files of saves to `name` whose process is gone (they crashed)."""
    prefix = f".{name}."
    for stale in glob.glob(os.path.join(glob.escape(directory), glob.escape(prefix) + "*.tmp")):
        try:
            pid = int(os.path.basename(stale)[len(prefix):].split(".")[0])
            if not _pid_alive(pid):
                os.unlink(stale)
        except (ValueError, OSError):
            pass


def _create_beside(directory: str, name: str) -> tuple[int, str]:
    """(fd, path) of a new file .<name>.<pid>.<random>.tmp in `directory`, created with mode
    0o666 less the umask, as open() would (mkstemp's 0o600 would need the umask read, which
    means setting it, process-wide)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = os.path.join(directory, f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no unused temporary file name", tmp)


def to_bytes(model: Sequential) -> bytes:
    """The file's bytes, in memory (what pickling a model stores)."""
    buffer = _io.BytesIO()
    np.savez(buffer, **_arrays(model))  # type: ignore[arg-type]
    return buffer.getvalue()


def from_bytes(data: bytes | bytearray, model_class: type[Sequential]) -> Sequential:
    """The model that to_bytes wrote, rebuilt as a `model_class`."""
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError(f"data: expected the bytes of a fastprop model, got {type(data).__name__}")
    return read(_io.BytesIO(data), "pickled fastprop model", model_class)  # shares bytes' memory


def load(path: str | os.PathLike[str], model_class: type[Sequential]) -> Sequential:
    """The model saved at `path`, rebuilt as a `model_class`; its optimizer, if one was saved,
    as `model.optimizer`, with its state. The file is opened once: its size and contents are
    those of one file, even while another process saves a new one to `path`."""
    path = os.fspath(path)
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    with f:
        return read(f, path, model_class)


class _Bad(Exception):
    """What is wrong with a file, raised inside the reader and reported as a ValueError."""


def _need(ok: object, what: str) -> None:
    if not ok:
        raise _Bad(what)


def _int(value: Any, name: str, low: int, high: int) -> int:
    _need(isinstance(value, int) and not isinstance(value, bool) and low <= value <= high,
          f"{name} must be an integer in [{low}, {high}], got {value!r}")
    return value


def _number(value: Any, name: str) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    try:
        ok = ok and bool(np.isfinite(float(value)))
    except OverflowError:
        ok = False
    _need(ok, f"{name} must be a finite number, got {str(value)[:40]}")
    return float(value)


def _open_array(archive: zipfile.ZipFile, name: str, opened: contextlib.ExitStack
                ) -> tuple[IO[bytes], tuple[int, ...], np.dtype[Any], bool, int]:
    """(the member `name`.npy, open in the ExitStack `opened` and positioned at its data, the
    shape, dtype and C order its npy header declares, the number of bytes after the header):
    nothing of the data is read yet."""
    info = archive.getinfo(name + ".npy")
    f = opened.enter_context(archive.open(info))
    try:
        version = np.lib.format.read_magic(f)
        _need(version in ((1, 0), (2, 0)), f"member {name!r} has npy version {version}")
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0) else
                       np.lib.format.read_array_header_2_0)
        shape, fortran, dtype = read_header(f, max_header_size=10000)
    except ValueError as exc:
        raise _Bad(f"member {name!r} is not a NumPy array ({exc})") from None
    return f, tuple(shape), dtype, not fortran, info.file_size - f.tell()


def _open_member(archive: zipfile.ZipFile, name: str, expected_shape: tuple[int, ...],
                 dtype: str, opened: contextlib.ExitStack) -> IO[bytes]:
    """An array member, open at its data, once its npy header, dtype, shape and size are
    checked: nothing is allocated for it before."""
    f, shape, got_dtype, c_order, n_data = _open_array(archive, name, opened)
    _need(not got_dtype.hasobject and got_dtype == dtype and c_order and
          shape == tuple(expected_shape),
          f"member {name!r} holds {got_dtype} {shape}, expected {np.dtype(dtype)} "
          f"{tuple(expected_shape)}")
    n_bytes = int(np.prod(expected_shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    _need(n_data == n_bytes, f"member {name!r} has {n_data} bytes of data, expected {n_bytes}")
    return f


_CHUNK_BYTES = 1 << 20


def _read_member(f: IO[bytes], name: str, out: NDArray[Any]) -> None:
    """Reads an open member's data straight into `out` (C-contiguous), a chunk at a time: the
    whole array is never held twice."""
    view = out.data.cast("B")
    done = 0
    while done < len(view):
        chunk = f.read(min(_CHUNK_BYTES, len(view) - done))
        _need(chunk, f"member {name!r} is truncated")
        view[done:done + len(chunk)] = chunk
        done += len(chunk)


def _header(archive: zipfile.ZipFile, opened: contextlib.ExitStack
            ) -> tuple[dict[str, Any], set[str]]:
    names = set(archive.namelist())
    _need("header.npy" in names and "params.npy" in names,
          f"expected the arrays 'header' and 'params', found "
          f"{sorted(n[:-4] if n.endswith('.npy') else n for n in names)}")
    info = archive.getinfo("header.npy")
    _need(info.file_size <= MAX_HEADER_BYTES, f"its header is {info.file_size} bytes, more than "
          f"{MAX_HEADER_BYTES}")
    f, shape, dtype, _, n_data = _open_array(archive, "header", opened)
    _need(dtype == np.uint8 and len(shape) == 1 and shape[0] == n_data,
          "member 'header' is not the header's bytes")
    raw = f.read(n_data)
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


def _architecture(header: dict[str, Any]) -> tuple[list[LayerSpec], list[str], int]:
    layers: Any = header.get("layers")
    _need(isinstance(layers, list) and 1 <= len(layers) <= MAX_LAYERS,
          f"'layers' must be a list of 1 to {MAX_LAYERS} layers")
    specs: list[LayerSpec] = []
    inits: list[str] = []
    n_params = 0
    for i, d in enumerate(layers):
        _need(isinstance(d, dict), f"layers[{i}] must be an object")
        n_in = _int(d.get("n_in"), f"layers[{i}].n_in", 1, INT_MAX)
        n_out = _int(d.get("n_out"), f"layers[{i}].n_out", 1, INT_MAX)
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


def read(source: IO[bytes], name: str, model_class: type[Sequential]) -> Sequential:
    """The model in `source` (a binary file object, open for reading; `name` names it in
    errors), rebuilt as a `model_class` (Sequential) once everything in the file has been
    checked."""
    try:
        return _read(source, model_class)
    except _Bad as exc:
        raise ValueError(f"{name}: not a valid fastprop model file: {exc}") from None
    except MemoryError:
        raise  # the process's limit, not the file's fault: sizes are checked before allocating
    except Exception as exc:
        # What zipfile and numpy raise on a damaged archive varies with the damage and the
        # Python version: BadZipFile, EOFError, OSError, KeyError, ValueError, struct.error,
        # NotImplementedError (an unknown zip version), RuntimeError (an encryption flag), ...
        raise ValueError(f"{name}: not a valid fastprop model file: cannot read it as a .npz "
                         f"archive ({type(exc).__name__}: {str(exc)[:200]})") from None


def _size(f: IO[bytes]) -> int:
    """The size of the open file `f` (not of whatever its path names by now)."""
    try:
        return os.fstat(f.fileno()).st_size
    except (AttributeError, OSError):  # in memory: io.UnsupportedOperation is an OSError
        at = f.tell()
        size = f.seek(0, os.SEEK_END)
        f.seek(at)
        return size


def _read(source: IO[bytes], model_class: type[Sequential]) -> Sequential:
    """Checks the archive's structure and header, builds the model without drawing weights,
    reads the arrays straight into its buffers, then checks their checksum and values; the
    model is returned only if all of it holds."""
    size = _size(source)
    with zipfile.ZipFile(source) as archive, contextlib.ExitStack() as opened:
        header, specs, inits, n_params, n_state = _layout(archive, size, opened)
        dtype = header["dtype"]
        names = ("params",) + _STATE[:n_state]
        members = [_open_member(archive, name, (n_params,), dtype, opened) for name in names]
        try:  # a version 1 file has no shuffle state: the model keeps the one drawn after the
            # weights from its seed, as it always did
            model = model_class.from_architecture(specs, dtype, header.get("seed"), inits,
                                                  _initialize=header["version"] == 1)
        except (TypeError, ValueError) as exc:
            raise _Bad(f"its architecture does not hold together ({exc})") from None
        state = (None if header.get("optimizer") is None else
                 OptimizerState(n_state, model.params))
        buffers = [model.params] + (state.buffers if state is not None else [])
        for name, f, buffer in zip(names, members, buffers):
            _read_member(f, name, buffer)
    if header["version"] == 1:
        _need(hashlib.sha256(model.params.data.cast("B")).hexdigest() ==
              header.get("params_sha256"),
              "the parameters do not match their checksum (edited or damaged)")
    else:
        _need(digest(header, buffers) == header.get("sha256"),
              "its contents do not match their checksum (edited or damaged)")
    _need(not count_not_finite(model.params), "its parameters are not all finite")
    rng, dropout, shuffle = _counters(header)
    optimizer = None if state is None else _optimizer(header["optimizer"], state)
    # everything read and checked: complete the model
    model._rng = rng
    model._dropout_state[...] = dropout
    if shuffle is not None:
        model._shuffle_state[...] = shuffle
    if optimizer is not None:
        model._bind(optimizer, 1, state)
    return model


def _layout(archive: zipfile.ZipFile, size: int, opened: contextlib.ExitStack
            ) -> tuple[dict[str, Any], list[LayerSpec], list[str], int, int]:
    """(header, layer specs, inits, n_params, number of optimizer state arrays): the archive's
    members and header checked against each other, against the file's `size` and against the
    format's limits."""
    for info in archive.infolist():
        _need(info.compress_type == zipfile.ZIP_STORED, f"member {info.filename!r} is "
              f"compressed; fastprop files store arrays uncompressed")
    _need(sum(i.file_size for i in archive.infolist()) <= size,
          "its members declare more bytes than the file holds")
    header, names = _header(archive, opened)
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
    return header, specs, inits, n_params, n_state


def _counters(header: dict[str, Any]
              ) -> tuple[np.random.Generator, NDArray[np.uint64], NDArray[np.uint64] | None]:
    """(the model's generator, dropout state, shuffle state or None) from the header."""
    try:
        rng = np.random.default_rng()
        rng.bit_generator.state = header["rng_state"]
        dropout = np.array([_int(header["dropout_seed"], "dropout_seed", 0, 2**64 - 1),
                            _int(header["dropout_step"], "dropout_step", 0, 2**62)], np.uint64)
        shuffle = None
        if "shuffle_seed" in header or header["version"] >= 2:
            shuffle = np.array([_int(header["shuffle_seed"], "shuffle_seed", 0, 2**64 - 1),
                                _int(header["shuffle_count"], "shuffle_count", 0, 2**62)],
                               np.uint64)
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise _Bad(f"its random generator state is unreadable ({type(exc).__name__}: "
                   f"{str(exc)[:100]})") from None
    return rng, dropout, shuffle


def _optimizer(opt: dict[str, Any], state: OptimizerState) -> Optimizer:
    """The optimizer the header's 'optimizer' describes, once `state` (an OptimizerState, read
    from the file) has been checked against it; sets its step count."""
    config: Any = opt.get("config")
    _need(isinstance(config, dict), "optimizer.config must be an object")
    try:
        optimizer = OPTIMIZERS[opt["class"]](**config)
    except (TypeError, ValueError, OverflowError) as exc:
        raise _Bad(f"its optimizer's settings are invalid ({exc})") from None
    n_state = len(state.buffers)
    _need(optimizer.n_state == n_state, f"optimizer.n_state is {n_state}, a "
          f"{opt['class']} with these settings keeps {optimizer.n_state}")
    for i, buf in enumerate(state.buffers):
        _need(not count_not_finite(buf), f"optimizer state {i} is not all finite")
    squares = {"Adam": 1, "AdamW": 1, "RMSprop": 0}.get(opt["class"])
    if squares is not None:  # min(): no temporary the size of the buffer
        _need(state.buffers[squares].min() >= 0,
              f"optimizer state {squares} (a mean of squares) has negative values")
    state.steps[0] = _int(opt.get("t"), "optimizer.t", 0, 2**62)
    return optimizer

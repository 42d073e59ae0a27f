"""Files as the operating system sees them: a load that races a save to the same path, damaged
archives that make zipfile raise unusual exceptions, and saves over an existing path (its mode,
a symlink, an empty or directory path, the path named in errors), for every atomic writer."""
import io
import json
import os
import stat
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

import fastprop as fp

TESTS = os.path.dirname(os.path.abspath(__file__))


def two_models():
    """Two models of different sizes: a reader that sized one file and read the other fails."""
    a = fp.Sequential([fp.Dense(3, 4, "tanh"), fp.Dense(4, 2)], seed=1)
    b = fp.Sequential([fp.Dense(30, 40, "relu"), fp.Dropout(0.5), fp.Dense(40, 2)], seed=2)
    return a, b


WRITER = """
import os, sys, time
sys.path.insert(0, sys.argv[3])
from test_files import two_models
models = two_models()
path, seconds = sys.argv[1], float(sys.argv[2])
print("ready", flush=True)
n, end = 0, time.monotonic() + seconds
while time.monotonic() < end and not os.path.exists(path + ".stop"):
    models[n % 2].save(path)
    n += 1
print(n, flush=True)
"""


def test_loads_racing_saves_to_the_same_path_all_succeed(tmp_path):
    models = two_models()
    path = str(tmp_path / "m.npz")
    models[0].save(path)
    # from the test's own folder: `-c` puts the working directory first on the path, and from
    # the repository's root that is the uncompiled source tree
    writer = subprocess.Popen([sys.executable, "-c", WRITER, path, "30", TESTS],
                              stdout=subprocess.PIPE, text=True, cwd=str(tmp_path))
    loads, failures, seen = 0, [], set()
    try:
        assert writer.stdout.readline() == "ready\n"
        end = time.monotonic() + 3.0
        while time.monotonic() < end:
            try:
                loaded = fp.load(path)
            except ValueError as exc:
                failures.append(str(exc))
                continue
            loads += 1
            k = 0 if loaded.n_params == models[0].n_params else 1
            np.testing.assert_array_equal(loaded.params, models[k].params)
            assert repr(loaded) == repr(models[k])
            seen.add(k)
    finally:
        open(path + ".stop", "w").close()
        saves = int(writer.communicate(timeout=60)[0])
    assert not failures, (f"{len(failures)} of {loads + len(failures)} loads failed while "
                          f"{saves} saves ran; the first: {failures[0]}")
    assert seen == {0, 1} and saves >= 20 and loads >= 50, (seen, saves, loads)


# -------------------------------------------------------------------------------------------
# Damaged archives: whatever zipfile or numpy raises becomes the reader's ValueError

def _saved_bytes():
    rng = np.random.default_rng(0)
    model = fp.Sequential([fp.Dense(2, 3, "tanh"), fp.Dense(3, 2, "softmax")], seed=1)
    model.fit(rng.normal(size=(10, 2)), rng.integers(0, 2, 10), "softmax_cross_entropy",
              fp.Adam(0.01), epochs=1, batch_size=4)
    return model, fp.io.to_bytes(model)


MODEL, GOOD = _saved_bytes()


def _first_central_entry(data):
    at = data.find(b"PK\x01\x02")
    assert at > 0
    return at


def _crafted(kind):
    data = bytearray(GOOD)
    entry = _first_central_entry(data)
    if kind == "version":  # "version needed to extract" beyond what zipfile reads
        data[entry + 6] ^= 0x40
    else:  # the general purpose flags: encrypted
        data[entry + 8] |= 0x01
    return bytes(data)


@pytest.mark.parametrize("kind,raised", [("version", NotImplementedError),
                                         ("encrypted", RuntimeError)])
def test_zipfile_exceptions_become_value_errors_naming_the_file(tmp_path, kind, raised):
    data = _crafted(kind)
    with pytest.raises(raised):  # what zipfile itself makes of this file
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            for name in z.namelist():
                z.read(name)
    path = tmp_path / f"{kind}.npz"
    path.write_bytes(data)
    with pytest.raises(ValueError) as info:
        fp.load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: not a valid fastprop model file: "), message
    assert raised.__name__ in message, message
    with pytest.raises(ValueError, match="pickled fastprop model: not a valid fastprop model"):
        fp.io.from_bytes(data, fp.Sequential)


def _members(model):
    """What a model saves, member by member (the header includes the checksum of everything),
    without the zip around them."""
    return fp.io._arrays(model)


def _member_data():
    """The byte ranges of GOOD that hold the members (npy header and array): what the format
    covers, where no flip may go unnoticed."""
    ranges = []
    with zipfile.ZipFile(io.BytesIO(GOOD)) as z:
        for info in z.infolist():
            at = info.header_offset
            name_len, extra_len = np.frombuffer(GOOD[at + 26:at + 30], "<u2")
            start = at + 30 + int(name_len) + int(extra_len)
            ranges.append(range(start, start + info.compress_size))
    return ranges


def test_every_byte_flipped_is_refused_or_changes_nothing():
    """Every byte of a small file flipped, one bit at a time: all eight bits of the zip
    structure (where zipfile's own exceptions come from), one bit of each byte of the members
    (the bit rotating with the position; the checksum covers them all)."""
    expected = _members(MODEL)
    covered = set().union(*_member_data())
    flips = [(at, 1 << bit) for at in range(len(GOOD))
             for bit in ([at % 8] if at in covered else range(8))]
    loaded, refused, others = [], 0, []
    for at, xor in flips:
        data = bytearray(GOOD)
        data[at] ^= xor
        try:
            model = fp.io.from_bytes(bytes(data), fp.Sequential)
        except ValueError as exc:
            if not str(exc).startswith("pickled fastprop model: not a valid fastprop model "
                                       "file: "):
                others.append((at, xor, str(exc)))
            refused += 1
            continue
        except Exception as exc:  # noqa: BLE001 -- what the test is looking for
            others.append((at, xor, f"{type(exc).__name__}: {exc}"))
            continue
        got = _members(model)  # what it saves again: header (and so checksum) and arrays
        assert got.keys() == expected.keys()
        for k in expected:
            np.testing.assert_array_equal(got[k], expected[k], err_msg=f"byte {at} ^ {xor}")
        loaded.append(at)
    assert not others, f"{len(others)} flips raised otherwise, e.g. {others[:3]}"
    assert refused + len(loaded) == len(flips) and len(covered) > 0.7 * len(GOOD)
    # what loads was damaged where nothing reads (timestamps, the local headers' copies of the
    # central directory, "version made by", ...), never in a member's npy header or data
    assert not set(loaded) & covered, sorted(set(loaded) & covered)
    assert refused > 0.6 * len(flips), (refused, len(flips))


# -------------------------------------------------------------------------------------------
# Saving over a path

def _savers():
    """(name, save(path)) for every writer that goes through io.write_atomically."""
    model = fp.Sequential([fp.Dense(2, 2)], seed=0)
    savers = [("save", lambda path: model.save(path))]
    X, y = np.ones((8, 2)), np.zeros((8, 2))

    def checkpoint(path):
        fp.Sequential([fp.Dense(2, 2)], seed=0).fit(
            X, y, "mse", fp.SGD(0.1), epochs=1, batch_size=8,
            callbacks=[fp.ModelCheckpoint(path, monitor="loss")])
        return path

    savers.append(("ModelCheckpoint", checkpoint))
    try:
        import onnx  # noqa: F401
        from fastprop.onnx import save_onnx
        savers.append(("save_onnx", lambda path: save_onnx(model, path)))
    except ImportError:
        pass
    return savers


SAVERS = _savers()
IDS = [name for name, _ in SAVERS]


@pytest.mark.parametrize("save", [s for _, s in SAVERS], ids=IDS)
def test_saving_over_a_file_keeps_its_mode(tmp_path, save):
    path = tmp_path / "m.npz"
    path.write_bytes(b"old")
    os.chmod(path, 0o600)
    save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert path.read_bytes() != b"old"
    os.chmod(path, 0o640)
    save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640


@pytest.mark.parametrize("save", [s for _, s in SAVERS], ids=IDS)
def test_saving_through_a_symlink_replaces_its_target(tmp_path, save):
    (tmp_path / "store").mkdir()
    target = tmp_path / "store" / "real.npz"
    target.write_bytes(b"old")
    os.chmod(target, 0o600)
    link = tmp_path / "link.npz"
    link.symlink_to(os.path.join("store", "real.npz"))  # relative, as links often are
    save(link)
    assert link.is_symlink() and os.readlink(link) == os.path.join("store", "real.npz")
    assert target.read_bytes() != b"old" and stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert sorted(os.listdir(tmp_path)) == ["link.npz", "store"]
    assert os.listdir(tmp_path / "store") == ["real.npz"]  # no temporary left anywhere
    # a link to a file not yet there (a dangling link) creates it, as open() would
    dangling = tmp_path / "new.npz"
    dangling.symlink_to(tmp_path / "store" / "new.npz")
    save(dangling)
    assert dangling.is_symlink() and (tmp_path / "store" / "new.npz").stat().st_size > 0


@pytest.mark.parametrize("save", [s for _, s in SAVERS], ids=IDS)
@pytest.mark.parametrize("bad", ["", ".", "dir", "dir/", "dir_link"])
def test_empty_and_directory_paths_are_refused_before_anything_is_written(tmp_path,
                                                                          monkeypatch, save,
                                                                          bad):
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "dir").mkdir()
    (tmp_path / "work" / "dir_link").symlink_to(tmp_path / "work" / "dir")
    monkeypatch.chdir(tmp_path / "work")
    before = sorted(p for p, _, _ in os.walk(tmp_path)), sorted(
        f for _, _, files in os.walk(tmp_path) for f in files)
    with pytest.raises(ValueError) as info:
        save(bad)
    message = str(info.value)
    assert message.startswith("path: expected a file path"), message
    assert "empty" in message if bad == "" else f"{bad!r}" in message and "directory" in message
    after = sorted(p for p, _, _ in os.walk(tmp_path)), sorted(
        f for _, _, files in os.walk(tmp_path) for f in files)
    assert after == before


def test_write_atomically_refuses_a_directory_itself(tmp_path):
    calls = []
    with pytest.raises(ValueError, match="path: expected a file path, got .* a directory"):
        fp.io.write_atomically(str(tmp_path), calls.append)
    assert calls == [] and os.listdir(tmp_path) == []


@pytest.mark.parametrize("save", [s for _, s in SAVERS], ids=IDS)
def test_os_errors_name_the_path_given_not_a_temporary_file(tmp_path, save):
    missing = tmp_path / "no_such_dir" / "m.npz"
    with pytest.raises(FileNotFoundError) as info:
        save(missing)
    assert info.value.filename == str(missing) and str(missing) in str(info.value)
    assert ".tmp" not in str(info.value)


@pytest.mark.parametrize("save", [s for _, s in SAVERS], ids=IDS)
def test_permission_errors_name_the_path_given(tmp_path, save):
    locked = tmp_path / "locked"
    locked.mkdir()
    os.chmod(locked, 0o500)
    try:
        if os.access(locked, os.W_OK):  # root writes anywhere
            pytest.skip("running as a user that ignores directory permissions")
        with pytest.raises(PermissionError) as info:
            save(locked / "m.npz")
        assert info.value.filename == str(locked / "m.npz") and ".tmp" not in str(info.value)
    finally:
        os.chmod(locked, 0o700)


def test_a_failed_rename_names_the_path_and_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    path.write_bytes(b"old")

    def refuse(src, dst):  # what a rename denied (even to root, e.g. by an immutable flag) raises
        raise PermissionError(13, "Permission denied", src, dst)

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(PermissionError) as info:
        fp.Sequential([fp.Dense(2, 2)]).save(path)
    assert info.value.filename == str(path) and ".tmp" not in str(info.value), info.value
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["m.npz"]


def test_an_error_inside_the_write_names_the_path_and_leaves_no_temporary(tmp_path):
    def full(f):
        f.write(b"x")
        raise OSError(28, "No space left on device")

    path = tmp_path / "m.npz"
    with pytest.raises(OSError) as info:
        fp.io.write_atomically(path, full)
    assert info.value.errno == 28 and info.value.filename == str(path), info.value
    assert os.listdir(tmp_path) == []


def test_a_new_file_gets_the_umask_mode(tmp_path):
    old = os.umask(0o077)
    try:
        path = fp.Sequential([fp.Dense(2, 2)]).save(tmp_path / "m.npz")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert json.loads(np.load(path)["header"].tobytes())["format"] == "fastprop"

"""Files as the operating system sees them: saves over an existing path (its mode, a symlink,
an empty or directory path, the path named in errors), for every writer that goes through
io.write_atomically."""
import json
import os
import stat

import numpy as np
import pytest

import fastprop as fp


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

"""The element-wise kernels are compiled for AVX-512, AVX2 and the baseline ISA and the best is
chosen when the library loads. With FMA contraction off (-ffp-contract=off, as setup.py builds)
the three must give the same bits: this builds csrc/kernels.c once per ISA, without
multiversioning, and compares every kernel's output byte for byte on the same inputs."""
import ctypes
import os
import shutil
import subprocess

import numpy as np
import pytest

from fastprop import _kernels

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ISAS = {"baseline": ["-march=x86-64"], "avx2": ["-march=x86-64", "-mavx2", "-mfma"],
        "avx512": ["-march=x86-64", "-mavx512f", "-mavx2", "-mfma"]}
FLAGS = ["-O3", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off", "-std=c11",
         "-shared", "-fPIC", "-DFP_NO_MULTIVERSION"]


def _cpu_has(flag):
    try:
        return flag in open("/proc/cpuinfo").read().split()
    except OSError:
        return False


@pytest.fixture(scope="module")
def libraries(tmp_path_factory):
    if shutil.which("gcc") is None or os.uname().machine != "x86_64":
        pytest.skip("needs gcc on x86-64")
    out = tmp_path_factory.mktemp("clones")
    libs = {}
    for isa, flags in ISAS.items():
        if isa == "avx512" and not _cpu_has("avx512f") or isa == "avx2" and not _cpu_has("avx2"):
            continue
        path = str(out / f"kernels_{isa}.so")
        subprocess.run(["gcc", *FLAGS, *flags, "-I", os.path.join(ROOT, "csrc"),
                        os.path.join(ROOT, "csrc", "kernels.c"), "-o", path, "-lm"], check=True)
        libs[isa] = ctypes.CDLL(path)
    if len(libs) < 2:
        pytest.skip("this CPU runs only the baseline clone")
    return libs


P = ctypes.c_void_p
N = ctypes.c_ssize_t


def _ptr(a):
    return a.ctypes.data_as(P) if a is not None else None


def _run(lib, dtype, kernel, seed):
    """Every output of `kernel` in one ISA build, as bytes."""
    rng = np.random.default_rng(seed)
    dt = 0 if dtype == np.float32 else 1
    n, m = 37, 11  # odd sizes: vector bodies and scalar tails both run
    Z = (rng.normal(size=(n, m)) * 4).astype(dtype)
    A = rng.random((n, m)).astype(dtype)
    Y = rng.random((n, m)).astype(dtype)
    if kernel.startswith("act"):
        code = int(kernel[3:])
        z, a = Z.copy(), np.empty_like(Z)
        assert lib.fp_bias_activation(dt, _ptr(z), _ptr(a), _ptr(Y[0]), N(n), N(m), code,
                                      ctypes.c_double(0.1)) == 0
        d = Y.copy()
        if code != 5:  # softmax's derivative is the cross-entropy's
            assert lib.fp_activation_backward(dt, _ptr(d), _ptr(A), _ptr(Z), N(n * m), code,
                                              ctypes.c_double(0.1)) == 0
        return z.tobytes() + a.tobytes() + d.tobytes()
    if kernel.startswith("loss") or kernel.startswith("wloss"):
        code = int(kernel.split("loss")[1])
        w = rng.random(n).astype(dtype) if kernel.startswith("w") else None
        dZ = np.empty_like(Z)
        labels = rng.integers(0, m, size=n).astype(np.int64)
        correct = ctypes.c_int64(0)
        Yt = np.eye(m, dtype=dtype)[labels] if code == 3 else (Y > 0.5).astype(dtype)
        value = ctypes.c_double(0)
        activation = {3: 5}.get(code, 1)  # softmax for the cross-entropy, else sigmoid
        assert lib.fp_loss_gradient(dt, code, _ptr(Z), _ptr(A), _ptr(Yt), None, _ptr(w),
                                    _ptr(dZ), N(n), N(m), activation, ctypes.c_double(0.0),
                                    ctypes.byref(value), ctypes.byref(correct)) == 0
        return np.float64(value.value).tobytes() + dZ.tobytes() + bytes([correct.value % 256])
    if kernel == "column_sum":
        db = np.empty(m, dtype)
        lib.fp_column_sum(dt, _ptr(Z), N(n), N(m), _ptr(db), 0)
        return db.tobytes()
    if kernel.startswith("opt"):
        kind = int(kernel[3])

        class Opt(ctypes.Structure):
            _fields_ = [("kind", ctypes.c_int), ("nesterov", ctypes.c_int)] + \
                       [(f, ctypes.c_double) for f in ("lr", "momentum", "beta1", "beta2", "eps",
                                                       "alpha", "weight_decay", "max_norm")] + \
                       [("eps_outside", ctypes.c_int), ("lr_in_velocity", ctypes.c_int)]
        opt = Opt(kind, 1, 0.01, 0.9, 0.9, 0.999, 1e-8, 0.99, 0.01, 1.0, kind % 2,
                  int(kernel.endswith("v")))
        p, g = Z.ravel().copy(), Y.ravel().copy()
        s0, s1 = np.abs(A.ravel()).copy(), np.abs(Y.ravel()).copy()
        for t in (1, 2, 3):
            assert lib.fp_optimizer_step(dt, ctypes.byref(opt), _ptr(p), _ptr(g), _ptr(s0),
                                         _ptr(s1), N(p.size), ctypes.c_int64(t)) == 0
        return p.tobytes() + g.tobytes() + s0.tobytes() + s1.tobytes()
    if kernel == "dropout":
        M, D = np.empty_like(A), np.empty_like(A)
        lib.fp_dropout(dt, _ptr(A), _ptr(M), _ptr(D), N(n * m), ctypes.c_uint64(12345),
                       ctypes.c_double(0.3))
        return M.tobytes() + D.tobytes()
    raise ValueError(kernel)


KERNELS = [f"act{c}" for c in range(_kernels.N_CODES["activation"])] + \
          [f"{w}loss{c}" for c in range(_kernels.N_CODES["loss"]) for w in ("", "w")] + \
          ["column_sum", "dropout"] + [f"opt{k}" for k in range(5)] + ["opt1v"]


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_every_isa_clone_gives_the_same_bits(libraries, kernel, dtype):
    results = {isa: _run(lib, dtype, kernel, seed=3) for isa, lib in libraries.items()}
    baseline = results.pop("baseline")
    for isa, got in results.items():
        assert got == baseline, f"{kernel} ({np.dtype(dtype).name}): {isa} differs from baseline"

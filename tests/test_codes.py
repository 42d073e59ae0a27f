"""Unknown codes are errors: an activation, loss, optimizer kind or dtype code out of range (-1,
or the count its enum ends with) is a ValueError naming it at every entry point that takes one,
and the C entry points themselves return FP_ERR_CODE having changed nothing, never another op's
arithmetic."""
import ctypes
import os
import shutil
import subprocess

import numpy as np
import pytest

import fastprop as fp
from fastprop import _kernels
from fastprop._engine import Engine

N_ACT, N_LOSS, N_OPT, N_DTYPE = (_kernels.N_CODES[k] for k in ("activation", "loss",
                                                                "optimizer", "dtype"))
ACT, LOSS = _kernels.fp_activation, _kernels.fp_loss
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_counts_close_each_enum():
    # every code below the count has a row, named as in fastprop.h
    assert sorted(int(c) for c in ACT) == list(range(N_ACT)) and ACT.FP_GELU == ACT(6)
    assert sorted(int(c) for c in LOSS) == list(range(N_LOSS))
    assert [int(c) for c in _kernels.fp_optimizer_kind][-1] == N_OPT
    assert N_DTYPE == 2
    assert len(fp.ACTIVATIONS) == N_ACT and len(fp.LOSSES) == N_LOSS
    assert _kernels.C_INT_MAX == 2**31 - 1


@pytest.mark.parametrize("code", [-1, N_ACT])
def test_every_twin_refuses_an_unknown_activation(code):
    A = np.ones((3, 4))
    W, b = np.ones((4, 4)), np.ones(4)
    out = np.zeros((3, 4))
    calls = [
        lambda: _kernels._forward(A, False, W, False, b, None, out, code, 0.0),
        lambda: _kernels._delta(A, False, W, False, A, A, out, code, 0.0),
        lambda: _kernels._loss_gradient(0, A, A, A, None, out, code, 0.0),
        lambda: _kernels._bias_activation(A.copy(), out, b, code, 0.0),
        lambda: _kernels._activation_backward(out, A, A, code, 0.0),
        lambda: _kernels._activation_describe(code),
    ]
    for call in calls:
        with pytest.raises(ValueError, match=f"activation.*code {code}"):
            call()
        assert not out.any()  # nothing written


@pytest.mark.parametrize("code", [-1, N_LOSS])
def test_every_loss_entry_point_refuses_an_unknown_loss(code):
    A = np.ones((3, 4))
    with pytest.raises(ValueError, match=f"loss: unknown code {code}"):
        _kernels._loss_gradient(code, A, A, A, None, None, 0, 0.0)
    with pytest.raises(ValueError, match=f"loss: unknown code {code}"):
        _kernels._loss_describe(code)
    model = fp.Sequential([fp.Dense(4, 3, "tanh"), fp.Dense(3, 2)], dtype="float64", seed=0)
    engine = Engine(model.architecture, model.params, model.grads, 8, model._dropout_state)
    engine.bind_optimizer(_hyper(), [], np.zeros(1, np.int64))
    X, Y = np.ones((3, 4)), np.ones((3, 2))
    before = model.params.copy()
    calls = [
        lambda: engine.loss(X, Y, None, code),
        lambda: engine.gradients(X, Y, None, code),
        lambda: engine.data(X, Y, None, None, code),  # what epoch, epochs and part take
    ]
    for call in calls:
        with pytest.raises(ValueError, match=f"loss: unknown code {code}"):
            call()
    np.testing.assert_array_equal(model.params, before)


def _hyper():
    from fastprop._kernels import fp_optimizer_kind as K
    return {"kind": int(K.FP_OPT_SGD), "nesterov": 0, "lr": 0.1, "momentum": 0.0, "beta1": 0.9,
            "beta2": 0.999, "eps": 1e-8, "alpha": 0.99, "weight_decay": 0.0, "max_norm": 0.0,
            "eps_outside": 0, "lr_in_velocity": 0}


class _Spec:
    """A LayerSpec-like description with a raw activation code."""

    def __init__(self, n_in, n_out, code):
        self.n_in, self.n_out, self.activation_code = n_in, n_out, code
        self.activation_param, self.dropout_rate = 0.0, 0.0


@pytest.mark.parametrize("code", [-1, N_ACT])
def test_the_engine_refuses_an_unknown_activation(code):
    params = np.zeros(4 * 3 + 3 + 3 * 2 + 2)
    with pytest.raises(ValueError, match=f"activation: unknown code {code}"):
        Engine([_Spec(4, 3, code), _Spec(3, 2, 0)], params, np.zeros_like(params), 4,
               np.zeros(2, np.uint64))


@pytest.mark.parametrize("kind", [-1, N_OPT])
def test_an_unknown_optimizer_kind_is_refused(kind):
    model = fp.Sequential([fp.Dense(4, 2)], dtype="float64", seed=0)
    engine = Engine(model.architecture, model.params, model.grads, 8, model._dropout_state)
    hyper = dict(_hyper(), kind=kind)
    with pytest.raises(ValueError, match=f"optimizer kind: unknown code {kind}"):
        engine.bind_optimizer(hyper, [], np.zeros(1, np.int64))
    with pytest.raises(ValueError, match=f"optimizer kind: unknown code {kind}"):
        _kernels._optimizer_n_state(kind)


@pytest.mark.parametrize("activation", [-1, N_ACT])
def test_fastprop_kernels_refuse_unknown_activations_by_name(activation):
    # the Python API takes names; an unknown one is a ValueError before any kernel runs
    X, W, b = np.ones((2, 3)), np.ones((3, 2)), np.ones(2)
    for call in (lambda: fp.kernels.forward(X, W, b, f"act{activation}"),
                 lambda: fp.kernels.delta(np.ones((2, 2)), W, X, f"act{activation}"),
                 lambda: fp.kernels.loss_gradient("mse", X, X, X, f"act{activation}")):
        with pytest.raises(ValueError, match="activation.*expected one of"):
            call()


# ---------------------------------------------------------------------------------------------
# The C entry points themselves, through ctypes: FP_ERR_CODE (-1), nothing written.

@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    if shutil.which("gcc") is None:
        pytest.skip("needs gcc")
    path = str(tmp_path_factory.mktemp("codes") / "kernels.so")
    subprocess.run(["gcc", "-O0", "-std=c11", "-shared", "-fPIC", "-DFP_NO_MULTIVERSION", "-I",
                    os.path.join(ROOT, "csrc"), os.path.join(ROOT, "csrc", "kernels.c"), "-o",
                    path, "-lm"], check=True)
    return ctypes.CDLL(path)


def test_the_c_entry_points_return_an_error_for_unknown_codes(lib):
    P, N, D = ctypes.c_void_p, ctypes.c_ssize_t, ctypes.c_double
    n = 12
    buf = {k: np.zeros(n) for k in ("Z", "A", "Y", "dZ", "p", "g", "s0", "s1", "M")}
    ptr = {k: v.ctypes.data_as(P) for k, v in buf.items()}
    value, correct, out = D(0), ctypes.c_int64(0), ctypes.c_int(7)

    class Opt(ctypes.Structure):
        _fields_ = [("kind", ctypes.c_int), ("nesterov", ctypes.c_int)] + \
                   [(f, D) for f in ("lr", "momentum", "beta1", "beta2", "eps", "alpha",
                                     "weight_decay", "max_norm")] + [("eps_outside", ctypes.c_int)]

    for bad_act in (-1, N_ACT):
        assert lib.fp_bias_activation(1, ptr["Z"], ptr["A"], ptr["Y"], N(3), N(4), bad_act,
                                      D(0)) == -1
        assert lib.fp_activation_backward(1, ptr["dZ"], ptr["A"], ptr["Z"], N(n), bad_act,
                                          D(0)) == -1
        assert lib.fp_loss_gradient(1, 0, ptr["Z"], ptr["A"], ptr["Y"], None, None, ptr["dZ"],
                                    N(3), N(4), bad_act, D(0), ctypes.byref(value),
                                    ctypes.byref(correct)) == -1
        assert lib.fp_activation_describe(bad_act, ctypes.byref(out)) == -1
    for bad_loss in (-1, N_LOSS):
        assert lib.fp_loss_gradient(1, bad_loss, ptr["Z"], ptr["A"], ptr["Y"], None, None,
                                    ptr["dZ"], N(3), N(4), 0, D(0), ctypes.byref(value),
                                    ctypes.byref(correct)) == -1
        # with no rows too: the code is checked before anything else
        assert lib.fp_loss_gradient(1, bad_loss, None, None, None, None, None, None, N(0), N(4),
                                    0, D(0), ctypes.byref(value), ctypes.byref(correct)) == -1
        info = (ctypes.c_int * 4)()
        assert lib.fp_loss_describe(bad_loss, info) == -1
    for bad_kind in (-1, N_OPT):
        buf["g"][...] = 5.0
        opt = Opt(bad_kind, 0, 0.1, 0.9, 0.9, 0.999, 1e-8, 0.99, 0.0, 1.0, 0)  # with clipping
        assert lib.fp_optimizer_step(1, ctypes.byref(opt), ptr["p"], ptr["g"], ptr["s0"],
                                     ptr["s1"], N(n), ctypes.c_int64(1)) == -1
        assert (buf["g"] == 5.0).all()  # not clipped: nothing changed
        assert lib.fp_optimizer_n_state(bad_kind, ctypes.byref(out)) == -1
    for bad_dtype in (-1, N_DTYPE):
        assert lib.fp_bias_activation(bad_dtype, ptr["Z"], ptr["A"], ptr["Y"], N(3), N(4), 3,
                                      D(0)) == -1
        assert lib.fp_sgd_update(bad_dtype, ptr["p"], ptr["g"], N(n), D(0.1)) == -1
        assert lib.fp_mul(bad_dtype, ptr["p"], ptr["g"], N(n)) == -1
        assert lib.fp_dropout(bad_dtype, ptr["A"], ptr["M"], ptr["dZ"], N(n), ctypes.c_uint64(1),
                              D(0.5)) == -1
        assert lib.fp_column_sum(bad_dtype, ptr["Z"], N(3), N(4), ptr["Y"], 0) == -1
        assert lib.fp_all_finite(bad_dtype, ptr["p"], N(n), ctypes.byref(out)) == -1
        assert lib.fp_sum_of_squares(bad_dtype, ptr["p"], N(n), ctypes.byref(value)) == -1
        assert lib.fp_scale(bad_dtype, ptr["p"], ptr["g"], D(2.0), N(n),
                            ctypes.byref(value)) == -1
        indptr, indices = np.array([0, 1], np.int64), np.array([0], np.int32)
        assert lib.fp_csr_product(bad_dtype, ptr["g"], indices.ctypes.data_as(P),
                                  indptr.ctypes.data_as(P), None, N(0), N(1), ptr["g"], N(4),
                                  ptr["A"]) == -1
        assert lib.fp_csr_scatter(bad_dtype, ptr["g"], indices.ctypes.data_as(P),
                                  indptr.ctypes.data_as(P), None, N(0), N(1), ptr["g"], N(4),
                                  ptr["p"], D(1.0)) == -1
        assert lib.fp_loss_gradient(bad_dtype, 0, ptr["Z"], ptr["A"], ptr["Y"], None, None,
                                    ptr["dZ"], N(3), N(4), 0, D(0), ctypes.byref(value),
                                    ctypes.byref(correct)) == -1
    for k in ("A", "dZ", "p", "s0", "s1", "M"):
        assert not buf[k].any(), k
    # softmax has no derivative pass of its own, and a Z-reading derivative needs its Z
    assert lib.fp_activation_backward(1, ptr["dZ"], ptr["A"], ptr["Z"], N(n),
                                      int(ACT.FP_SOFTMAX), D(0)) == -1
    assert lib.fp_activation_backward(1, ptr["dZ"], ptr["A"], None, N(n),
                                      int(ACT.FP_GELU), D(0)) == -2
    # a loss computed from the logits takes only its own output activation
    assert lib.fp_loss_gradient(1, int(LOSS.FP_LOSS_BCE), ptr["Z"], ptr["A"], ptr["Y"], None,
                                None, ptr["dZ"], N(3), N(4), int(ACT.FP_RELU), D(0),
                                ctypes.byref(value), ctypes.byref(correct)) == -1

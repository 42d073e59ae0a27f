"""Helpers shared by the tests."""
import numpy as np

# Tolerances for comparing a float32 or float64 computation with its float64 reference.
_TOL = {np.float32: dict(rtol=2e-4, atol=2e-5), np.float64: dict(rtol=1e-10, atol=1e-12)}


def tol(dtype):
    return _TOL[np.dtype(dtype).type]


def layouts(a):
    """The same matrix in several memory layouts: C order, Fortran order, a strided view (every
    other column of a wider array), and read-only."""
    c = np.ascontiguousarray(a)
    f = np.asfortranarray(a)
    wide = np.zeros((a.shape[0], 2 * a.shape[1]), a.dtype)
    wide[:, ::2] = a
    ro = c.copy()
    ro.flags.writeable = False
    return {"C": c, "F": f, "strided": wide[:, ::2], "readonly": ro}


LAYOUTS = ["C", "F", "strided", "readonly"]

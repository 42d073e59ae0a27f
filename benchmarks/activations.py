"""Each activation's cost per element against relu's: the fused bias + activation pass (in place,
as for a hidden layer, and into a separate output, as for the output layer) and the derivative
pass, alone, on a (256, 256) matrix (in cache), one thread, float32 and float64, median of 9
rounds alternating between the activations.

    python benchmarks/activations.py
"""
import os
import statistics
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

from fastprop import _kernels as C

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from machine import describe  # noqa: E402

from fastprop.activations import TABLE  # noqa: E402

CODES = {name: row.code for name, row in TABLE.items() if name != "softmax"}
NEEDS_Z = {name for name, row in TABLE.items() if row.needs_z}
SHAPE = (256, 256)


def per_element(f, calls=200):
    start = time.perf_counter()
    for _ in range(calls):
        f()
    return (time.perf_counter() - start) / calls / (SHAPE[0] * SHAPE[1])


def main():
    threadpool_limits(1)
    print("activations: ns per element, (256, 256) in cache, one thread\n" + describe() + "\n")
    print("| dtype | activation | forward in place (ns) | forward into A (ns) | derivative (ns) "
          "| forward / relu's | derivative / relu's |\n|---|---|---:|---:|---:|---:|---:|")
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        Z0 = rng.normal(scale=2.0, size=SHAPE).astype(dtype)
        b = rng.normal(size=SHAPE[1]).astype(dtype)
        Z, A, dA = Z0.copy(), np.empty_like(Z0), np.ones_like(Z0)
        times = {name: ([], [], []) for name in CODES}
        for _ in range(9):
            for name, code in CODES.items():
                # the pass adds b to Z each call: refresh it first, in both timings alike
                inplace = per_element(lambda: (np.copyto(Z, Z0),
                                               C._bias_activation(Z, Z, b, code, 0.01)))
                into = per_element(lambda: (np.copyto(Z, Z0),
                                            C._bias_activation(Z, A, b, code, 0.01)))
                copy = per_element(lambda: (np.copyto(Z, Z0),))
                Zd = Z if name in NEEDS_Z else None  # the derivative reads Z only if it needs it
                deriv = per_element(lambda: C._activation_backward(dA, A, Zd, code, 0.01))
                for lst, v in zip(times[name], (inplace - copy, into - copy, deriv)):
                    lst.append(v)
        med = {name: [statistics.median(v) * 1e9 for v in t] for name, t in times.items()}
        for name, (f_in, f_out, d) in med.items():
            print(f"| {np.dtype(dtype).name} | {name} | {f_in:.3f} | {f_out:.3f} | {d:.3f} "
                  f"| {f_in / med['relu'][0]:.2f} | {d / med['relu'][2]:.2f} |")


if __name__ == "__main__":
    sys.exit(main())

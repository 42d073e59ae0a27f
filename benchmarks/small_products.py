"""Narrow layers: csrc/small.h's loops against BLAS, per product, to place fp_small_layer's
threshold.

For each layer shape (inputs x outputs) and batch size, times the three products of a layer --
forward Z = A W, delta dA = dZ W^T, weight gradient dW = A^T dZ with the bias sums -- through the
small-product kernels and through the BLAS path of the same compiled kernels (W or A handed over
transposed, which only BLAS takes), one thread, alternating, median of 7 rounds of many calls.
A ratio below 1 means the small loops are faster. Each call also pays the same Python overhead
(about a microsecond), so the ratios at small batches understate both sides' difference.

    python benchmarks/small_products.py [--dtype float32]
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

from fastprop import _kernels as C

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from machine import describe  # noqa: E402

SHAPES = [(2, 4), (4, 1), (4, 4), (2, 8), (4, 8), (8, 4), (2, 16), (32, 1), (64, 1), (8, 8),
          (16, 4), (32, 2)]


def per_call(f, calls):
    start = time.perf_counter()
    for _ in range(calls):
        f()
    return (time.perf_counter() - start) / calls


def compare(n, K, M, dtype, rng):
    A = rng.standard_normal((n, K)).astype(dtype)
    At = A.T.copy()
    W = rng.standard_normal((K, M)).astype(dtype)
    Wt = W.T.copy()
    dZ = rng.standard_normal((n, M)).astype(dtype)
    b, Z, dA = np.zeros(M, dtype), np.empty((n, M), dtype), np.empty((n, K), dtype)
    dW, db = np.empty((K, M), dtype), np.empty(M, dtype)
    pairs = [(lambda: C._small_product(A, W, Z, False),
              lambda: C._forward(A, False, Wt, True, b, None, Z, 0, 0.0)),
             (lambda: C._small_product(dZ, W, dA, True),
              lambda: C._delta(dZ, False, Wt, True, A, dA, 0, 0.0)),
             (lambda: C._small_weight_gradient(A, dZ, dW, db, 1.0, 0.0, False),
              lambda: C._weight_gradient(At, True, dZ, dW, db, False))]
    calls = max(20, 300000 // (n * K * M + 100))
    out = []
    for small, blas in pairs:
        s, t = [], []
        for _ in range(7):
            s.append(per_call(small, calls))
            t.append(per_call(blas, calls))
        out.append((statistics.median(s), statistics.median(t)))
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    args = p.parse_args()
    threadpool_limits(1)
    print(f"narrow layers: csrc/small.h against BLAS, {args.dtype}, 1 thread\n"
          + describe() + "\n")
    print("| batch | layer | taken by the engine | forward: small us, BLAS us, ratio "
          "| delta | weight gradient |\n|---:|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    for n in (32, 128, 1024):
        for K, M in SHAPES:
            cells = [f"{1e6 * s:.2f}, {1e6 * t:.2f}, **{s / t:.2f}**"
                     for s, t in compare(n, K, M, np.dtype(args.dtype), rng)]
            taken = "small" if C._small_layer(K, M) else "BLAS"
            print(f"| {n} | {K} x {M} | {taken} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    sys.exit(main())

"""The seed 002 workload as its reader runs it: the seed's own NumPy SimpleNeuralNetwork against
fastprop's fit, side by side in one process.

    python benchmarks/seed_workload.py

2-4-1 sigmoid network, the seed's data (X = randn(100, 2) under np.random.seed(42),
y = x0 + x1 > 0), one full batch of 100, 1,000 epochs at lr 0.1; medians of 7 interleaved runs.
"""
import os
import platform
import statistics
import sys
import time

import numpy as np

import fastprop as fp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from seed_network import SimpleNeuralNetwork  # noqa: E402


def seed_code(X, y):
    nn = SimpleNeuralNetwork(2, 4, 1)
    start = time.perf_counter()
    for _ in range(1000):  # the seed's loop, its loss computed each epoch as it does
        y_pred = nn.forward(X)
        nn.compute_loss(y_pred, y)
        nn.backward(X, y, learning_rate=0.1)
    return time.perf_counter() - start


def fastprop_fit(X, y, dtype):
    model = fp.Sequential([fp.Dense(2, 4, "sigmoid"), fp.Dense(4, 1, "sigmoid")], dtype=dtype,
                          seed=0)
    start = time.perf_counter()
    model.fit(X, y, "binary_cross_entropy", fp.SGD(0.1), epochs=1000, batch_size=100)
    return time.perf_counter() - start


def main():
    from threadpoolctl import threadpool_info
    X, y = fp.datasets.make_seed_dataset()
    cpu = platform.processor()
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if "model name" in l)
    except (OSError, StopIteration):
        pass
    print(f"seed 002 workload: 2-4-1 sigmoid, 100 samples, full batch, 1,000 epochs\n"
          f"- CPU: {cpu}; {os.cpu_count()} logical cores; Python {platform.python_version()}, "
          f"NumPy {np.__version__}, fastprop {fp.__version__}\n- BLAS: "
          + "; ".join(f"{i['internal_api']} {i['version']} ({i['num_threads']} threads)"
                      for i in threadpool_info() if i["user_api"] == "blas") + "\n")
    runs = {"the seed's NumPy code": [], "fastprop float64": [], "fastprop float32": []}
    for _ in range(7):
        runs["the seed's NumPy code"].append(seed_code(X, y))
        runs["fastprop float64"].append(fastprop_fit(X, y, "float64"))
        runs["fastprop float32"].append(fastprop_fit(X, y, "float32"))
    seed = statistics.median(runs["the seed's NumPy code"])
    print("| 1,000 epochs | ms (median of 7) | the seed's code / this |\n|---|---:|---:|")
    for name, times in runs.items():
        t = statistics.median(times)
        print(f"| {name} | {1e3 * t:.2f} | {seed / t:.1f}x |")


if __name__ == "__main__":
    sys.exit(main())

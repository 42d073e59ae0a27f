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


class SimpleNeuralNetwork:
    """The seed's code (002, section 5), unchanged but for the printing."""

    def __init__(self, input_size, hidden_size, output_size):
        self.W1 = np.random.randn(input_size, hidden_size) * 0.01
        self.b1 = np.zeros(hidden_size)
        self.W2 = np.random.randn(hidden_size, output_size) * 0.01
        self.b2 = np.zeros(output_size)

    def sigmoid(self, x):
        return 1 / (1 + np.exp(-x))

    def sigmoid_derivative(self, x):
        return x * (1 - x)

    def forward(self, X):
        self.z1 = X @ self.W1 + self.b1
        self.a1 = self.sigmoid(self.z1)
        self.z2 = self.a1 @ self.W2 + self.b2
        self.a2 = self.sigmoid(self.z2)
        return self.a2

    def backward(self, X, y, learning_rate=0.1):
        m = X.shape[0]
        dz2 = self.a2 - y
        dW2 = (self.a1.T @ dz2) / m
        db2 = np.sum(dz2, axis=0) / m
        dz1 = (dz2 @ self.W2.T) * self.sigmoid_derivative(self.a1)
        dW1 = (X.T @ dz1) / m
        db1 = np.sum(dz1, axis=0) / m
        self.W2 -= learning_rate * dW2
        self.b2 -= learning_rate * db2
        self.W1 -= learning_rate * dW1
        self.b1 -= learning_rate * db1

    def compute_loss(self, y_pred, y_true):
        return np.mean((y_pred - y_true) ** 2)


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

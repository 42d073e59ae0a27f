"""The seed 002 workload as its reader runs it: the seed's own NumPy SimpleNeuralNetwork against
fastprop's fit, side by side in one process.

    python benchmarks/seed_workload.py

2-4-1 sigmoid network, the seed's data (X = randn(100, 2) under np.random.seed(42),
y = x0 + x1 > 0), one full batch of 100, 1,000 epochs at lr 0.1; medians of 7 interleaved runs,
everything on one thread. Compiled peers, each when installed: FANN (Debian's libfann-dev,
through ctypes: fann_train_epoch with FANN_TRAIN_BATCH, its full-batch gradient descent) and
KANN (pip install cynn: kann's own feed-forward trainer, 2-4-1 with one batch of 100 per epoch;
its optimizer is RMSprop and its hidden layer relu, so only its time compares).
"""
import ctypes
import ctypes.util
import os
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


def fann_peer(X, y, dtype):
    """FANN's full-batch training through ctypes, or None when libfann is not installed."""
    name = "floatfann" if dtype == "float32" else "doublefann"
    path = ctypes.util.find_library(name)
    if path is None:
        return None
    lib = ctypes.CDLL(path)
    real = ctypes.c_float if dtype == "float32" else ctypes.c_double
    lib.fann_create_standard_array.restype = ctypes.c_void_p
    lib.fann_create_standard_array.argtypes = [ctypes.c_uint, ctypes.POINTER(ctypes.c_uint)]
    class TrainData(ctypes.Structure):  # struct fann_train_data (FANN 2.2)
        _fields_ = [("errno_f", ctypes.c_int), ("error_log", ctypes.c_void_p),
                    ("errstr", ctypes.c_char_p), ("num_data", ctypes.c_uint),
                    ("num_input", ctypes.c_uint), ("num_output", ctypes.c_uint),
                    ("input", ctypes.POINTER(ctypes.POINTER(real))),
                    ("output", ctypes.POINTER(ctypes.POINTER(real)))]
    lib.fann_create_train.restype = ctypes.POINTER(TrainData)
    lib.fann_create_train.argtypes = [ctypes.c_uint, ctypes.c_uint, ctypes.c_uint]
    for f in ("fann_set_activation_function_hidden", "fann_set_activation_function_output",
              "fann_set_training_algorithm"):
        getattr(lib, f).argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.fann_set_learning_rate.argtypes = [ctypes.c_void_p, ctypes.c_float]
    lib.fann_train_epoch.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    lib.fann_train_epoch.restype = ctypes.c_float
    lib.fann_destroy.argtypes = [ctypes.c_void_p]
    lib.fann_destroy_train.argtypes = [ctypes.c_void_p]
    Xc = np.ascontiguousarray(X, dtype=dtype)
    yc = np.ascontiguousarray(y, dtype=dtype)

    def run():
        layers = (ctypes.c_uint * 3)(2, 4, 1)
        ann = lib.fann_create_standard_array(3, layers)
        data = lib.fann_create_train(100, 2, 1)
        for i in range(100):
            for j in range(2):
                data.contents.input[i][j] = Xc[i, j]
            data.contents.output[i][0] = yc[i, 0]
        lib.fann_set_activation_function_hidden(ann, 3)  # FANN_SIGMOID
        lib.fann_set_activation_function_output(ann, 3)
        lib.fann_set_training_algorithm(ann, 1)  # FANN_TRAIN_BATCH: full-batch descent
        lib.fann_set_learning_rate(ann, 0.1)
        start = time.perf_counter()
        for _ in range(1000):
            lib.fann_train_epoch(ann, data)
        seconds = time.perf_counter() - start
        lib.fann_destroy_train(data)
        lib.fann_destroy(ann)
        return seconds
    return run


def kann_peer(X, y):
    """KANN's feed-forward trainer (cynn), or None when cynn is not installed."""
    try:
        from cynn import kann
    except ImportError:
        return None
    Xc = np.ascontiguousarray(X, dtype=np.float32)
    yc = np.ascontiguousarray(y, dtype=np.float32)
    kann.set_verbose(0)

    def run():
        net = kann.KannNeuralNetwork.mlp(2, [4], 1, cost_type=kann.COST_BINARY_CROSS_ENTROPY)
        start = time.perf_counter()
        net.train(Xc, yc, learning_rate=0.1, mini_batch_size=100, max_epochs=1000,
                  min_epochs=1000, max_drop_streak=1000, validation_fraction=0.0)
        seconds = time.perf_counter() - start
        net.close()
        return seconds
    return run


def fastprop_fit(X, y, dtype):
    model = fp.Sequential([fp.Dense(2, 4, "sigmoid"), fp.Dense(4, 1, "sigmoid")], dtype=dtype,
                          seed=0)
    start = time.perf_counter()
    model.fit(X, y, "binary_cross_entropy", fp.SGD(0.1), epochs=1000, batch_size=100)
    return time.perf_counter() - start


def main():
    from machine import describe
    X, y = fp.datasets.make_seed_dataset()
    print("seed 002 workload: 2-4-1 sigmoid, 100 samples, full batch, 1,000 epochs\n"
          + describe() + "\n")
    from threadpoolctl import threadpool_limits
    threadpool_limits(1)  # one thread for everyone: the peers below are single-threaded
    peers = {"the seed's NumPy code": lambda: seed_code(X, y),
             "fastprop float64": lambda: fastprop_fit(X, y, "float64"),
             "fastprop float32": lambda: fastprop_fit(X, y, "float32")}
    for name, make in (("FANN float64", lambda: fann_peer(X, y, "float64")),
                       ("FANN float32", lambda: fann_peer(X, y, "float32")),
                       ("KANN float32 (RMSprop, relu hidden)", lambda: kann_peer(X, y))):
        run = make()
        if run is None:
            print(f"({name.split()[0]} is not installed: no row)")
        else:
            peers[name] = run
    runs = {name: [] for name in peers}
    for _ in range(7):
        for name, run in peers.items():
            runs[name].append(run())
    seed = statistics.median(runs["the seed's NumPy code"])
    print("| 1,000 epochs | ms (median of 7) | the seed's code / this |\n|---|---:|---:|")
    for name, times in runs.items():
        t = statistics.median(times)
        print(f"| {name} | {1e3 * t:.2f} | {seed / t:.1f}x |")


if __name__ == "__main__":
    sys.exit(main())

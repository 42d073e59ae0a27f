"""Times one fit of a fixed workload with the fastprop found first on sys.path, for comparing two
builds in alternation (each in its own process):

    for i in 1 2 3 4 5; do
        python benchmarks/ab_fit.py /path/to/old/tree mnist
        python benchmarks/ab_fit.py /path/to/new/tree mnist
    done

workloads: fixed (a fit's fixed cost: one-epoch fits of the seeds' 2-4-1 sigmoid network on its
100 rows, warm; prints the median microseconds per fit over 9 rounds of 2,000, and the fastest
round's), tiny (20 fits of the seeds' 2-4-1 sigmoid network x 1,000 full-batch epochs), mnist
(784-256-128-10 relu, 25,600 rows, 2 epochs of batch 64), tanh (the same with tanh), wide
(1024-2048-2048-1024 relu, 6,144 rows, 2 epochs of batch 256). Prints the fit's seconds.
"""
import statistics
import sys
import time

sys.path.insert(0, sys.argv[1])
import numpy as np  # noqa: E402
import fastprop as fp  # noqa: E402


def main():
    which = sys.argv[2]
    rng = np.random.default_rng(0)
    if which == "fixed":
        return fixed_cost()
    if which == "tiny":
        X, y = fp.datasets.make_seed_dataset()
        model = fp.Sequential([fp.Dense(2, 4, "sigmoid"), fp.Dense(4, 1, "sigmoid")], seed=0)
        start = time.perf_counter()
        for _ in range(20):
            model.fit(X, y, "binary_cross_entropy", fp.SGD(0.1), epochs=1000, batch_size=100)
    else:
        if which == "wide":
            sizes, batch, n, loss = [1024, 2048, 2048, 1024], 256, 256 * 24, "mse"
            y = rng.normal(size=(n, 1024)).astype(np.float32)
            acts = ["relu", "relu", "identity"]
        else:
            sizes, batch, n, loss = [784, 256, 128, 10], 64, 64 * 400, "softmax_cross_entropy"
            y = rng.integers(0, 10, n)
            hidden = "tanh" if which == "tanh" else "relu"
            acts = [hidden, hidden, "softmax"]
        X = rng.normal(size=(n, sizes[0])).astype(np.float32)
        model = fp.Sequential([fp.Dense(a, b, act) for a, b, act in
                               zip(sizes, sizes[1:], acts)], seed=0)
        model.fit(X[:batch], y[:batch], loss, fp.SGD(1e-3), batch_size=batch, shuffle=False)
        start = time.perf_counter()
        model.fit(X, y, loss, fp.SGD(1e-3), epochs=2, batch_size=batch, shuffle=False)
    print(f"{which} {time.perf_counter() - start:.3f}")


def fixed_cost():
    X, y = fp.datasets.make_seed_dataset()
    X, y = np.asarray(X, np.float32), np.asarray(y, np.float32).reshape(-1, 1)
    model = fp.Sequential([fp.Dense(2, 4, "sigmoid"), fp.Dense(4, 1, "sigmoid")], seed=0)
    opt = fp.SGD(0.1)
    for _ in range(500):  # warm
        model.fit(X, y, "binary_cross_entropy", opt, epochs=1, batch_size=100)
    rounds = []
    for _ in range(9):
        start = time.perf_counter()
        for _ in range(2000):
            model.fit(X, y, "binary_cross_entropy", opt, epochs=1, batch_size=100)
        rounds.append((time.perf_counter() - start) / 2000 * 1e6)
    print(f"fixed {statistics.median(rounds):.1f} us per one-epoch fit (median of 9 rounds of "
          f"2,000; fastest round {min(rounds):.1f} us)")


if __name__ == "__main__":
    main()

"""fastprop.sklearn against scikit-learn's MLP, side by side, with the same hyperparameters on
the same data: fit time (median over interleaved rounds), test accuracy and, for lbfgs, the
iterations and final loss (the same run gives the same numbers).

    pip install ".[bench]"                          # scikit-learn
    python benchmarks/sklearn_compare.py            # every workload
    python benchmarks/sklearn_compare.py --quick    # fewer rounds and a quarter of MNIST
    python benchmarks/sklearn_compare.py --lbfgs    # the lbfgs workloads only

- digits (scikit-learn's, 1,437 train / 360 test, float32): 64-128-10, adam, 100 epochs;
- MNIST-shaped synthetic data (60,000 train / 10,000 test x 784, 10 classes, float32):
  784-256-128-10, sgd, 5 epochs;
- lbfgs, max_iter=200, 128 hidden units, float64 (scikit-learn's lbfgs computes in float64 after
  its first evaluation whatever X's dtype): all of digits (1,797 x 64, 10 classes), and
  make_classification (20,000 train / 5,000 test x 100, 2 classes).
"""
import argparse
import statistics
import sys
import time
import warnings

import numpy as np

from _need import need

need("bench", "sklearn")

warnings.filterwarnings("ignore", category=Warning, module="sklearn")

from fastprop.sklearn import MLPClassifier as FastMLP  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.neural_network import MLPClassifier as SkMLP  # noqa: E402

warnings.filterwarnings("ignore", category=ConvergenceWarning)


def machine():
    import sklearn
    from machine import describe
    return describe(f", scikit-learn {sklearn.__version__}")


def digits_data():
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    order = np.random.default_rng(0).permutation(len(X))
    X, y = X[order], y[order]
    return X[:1437], y[:1437], X[1437:], y[1437:]


def classification_data():
    from sklearn.datasets import make_classification
    X, y = make_classification(25_000, 100, random_state=0)
    return X[:20_000], y[:20_000], X[20_000:], y[20_000:]


def lbfgs_digits_data():
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y, X / 16.0, y  # all of it, as the lbfgs measurements name it


def mnist_like(n_train, n_test=10_000, seed=0):
    """784 features from 10 classes: a random smooth prototype per class (a 28 x 28 blur of
    noise), per-sample affine jitter and pixel noise, so that classes overlap and accuracy is
    informative (neither trivial nor chance)."""
    rng = np.random.default_rng(seed)
    protos = rng.normal(size=(10, 28, 28))
    for _ in range(3):  # smooth each prototype
        protos = (protos + np.roll(protos, 1, 1) + np.roll(protos, 1, 2)) / 3
    protos = protos.reshape(10, 784)
    protos /= protos.std(axis=1, keepdims=True)
    n = n_train + n_test
    y = rng.integers(0, 10, size=n)
    mix = rng.integers(0, 10, size=n)  # a second class blended in
    w = rng.uniform(0.0, 0.45, size=(n, 1))
    X = (1 - w) * protos[y] + w * protos[mix] + rng.normal(scale=2.5, size=(n, 784))
    X = ((X - X.mean()) / X.std()).astype(np.float32)
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


def compare(name, params, data, rounds):
    X, y, Xt, yt = data
    times = {"fastprop": [], "scikit-learn": []}
    acc, runs = {}, {}
    for _ in range(rounds):
        for label, cls in (("fastprop", FastMLP), ("scikit-learn", SkMLP)):
            est = cls(**params)
            start = time.perf_counter()
            est.fit(X, y)
            times[label].append(time.perf_counter() - start)
            acc[label] = est.score(Xt, yt)
            runs[label] = f" {est.n_iter_} | {est.loss_:.10f} |"
            time.sleep(0.5)  # let the other library's thread pool go idle
    med = {k: statistics.median(v) for k, v in times.items()}
    lbfgs = params.get("solver") == "lbfgs"
    lines = [f"| {name} | fit seconds (median of {rounds}) | test accuracy |" +
             (" n_iter_ | loss_ |" if lbfgs else ""), "|---|---:|---:|" + ("---:|---:|" * lbfgs)]
    for label in ("fastprop", "scikit-learn"):
        lines.append(f"| {label} | {med[label]:.3f} | {acc[label]:.4f} |" +
                     (runs[label] if lbfgs else ""))
    lines.append(f"\nfastprop's fit is {med['scikit-learn'] / med['fastprop']:.2f}x faster; "
                 f"accuracy difference {100 * (acc['fastprop'] - acc['scikit-learn']):+.2f} "
                 f"points")
    return "\n".join(lines), med, acc


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--lbfgs", action="store_true", help="the lbfgs workloads only")
    args = parser.parse_args(argv)
    start = time.time()
    print(f"fastprop.sklearn against scikit-learn's MLPClassifier "
          f"({'quick' if args.quick else 'full'} run)\n")
    print(machine() + "\n")
    lbfgs = dict(hidden_layer_sizes=(128,), solver="lbfgs", max_iter=200, random_state=0)
    for name, data in (("digits 1,797 x 64, 64-128-10", lbfgs_digits_data),
                       ("make_classification 20,000 x 100, 100-128-1", classification_data)):
        text, _, _ = compare(f"{name}, lbfgs, max_iter=200, float64", lbfgs, data(),
                             1 if args.quick else 3)
        print(text + "\n")
    if not args.lbfgs:
        digits = dict(hidden_layer_sizes=(128,), solver="adam", max_iter=100, tol=0.0,
                      n_iter_no_change=100, random_state=0)
        text, _, _ = compare("digits, 64-128-10, adam, 100 epochs", digits, digits_data(),
                             3 if args.quick else 5)
        print(text + "\n")
        n = 15_000 if args.quick else 60_000
        mnist = dict(hidden_layer_sizes=(256, 128), solver="sgd", learning_rate_init=0.01,
                     max_iter=5, tol=0.0, n_iter_no_change=5, random_state=0)
        text, _, _ = compare(f"MNIST-shaped {n:,} x 784, 784-256-128-10, sgd, 5 epochs", mnist,
                             mnist_like(n), 1 if args.quick else 3)
        print(text + "\n")
    print(f"({time.time() - start:.0f} s; reproduce with `python benchmarks/sklearn_compare.py"
          f"{' --quick' if args.quick else ''}{' --lbfgs' if args.lbfgs else ''}`)")


if __name__ == "__main__":
    sys.exit(main())

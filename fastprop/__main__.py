"""python -m fastprop demo: train a small network on generated data and report its speed."""
from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence


def demo(args: argparse.Namespace) -> int:
    import fastprop as fp

    X, y = fp.datasets.make_spirals(n_samples=args.samples, n_classes=3, noise=0.35, seed=0)
    n_train = int(0.8 * len(X))
    X_train, y_train, X_test, y_test = X[:n_train], y[:n_train], X[n_train:], y[n_train:]
    model = fp.Sequential([fp.Dense(2, 64, activation="relu"),
                           fp.Dense(64, 64, activation="relu"),
                           fp.Dense(64, 3, activation="softmax")], dtype="float32", seed=0)
    print(f"fastprop {fp.__version__} demo: 3-class spirals, {n_train} training and "
          f"{len(X) - n_train} test samples, {os.cpu_count()} CPUs")
    print(model)
    history = model.fit(X_train, y_train, loss="softmax_cross_entropy",
                        optimizer=fp.SGD(lr=args.lr), epochs=args.epochs, batch_size=32,
                        seed=0, verbose=1)
    test = model.evaluate(X_test, y_test, loss="softmax_cross_entropy")
    print(f"test loss {test['loss']:.4f}  test accuracy {test['accuracy']:.4f}  "
          f"({sum(history.seconds):.2f} s of training)")
    return 0 if test["accuracy"] > 0.9 else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fastprop")
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="train a small network on generated spirals")
    d.add_argument("--epochs", type=int, default=30)
    d.add_argument("--samples", type=int, default=6000)
    d.add_argument("--lr", type=float, default=0.1)
    args = parser.parse_args(argv)
    return demo(args)


if __name__ == "__main__":
    sys.exit(main())

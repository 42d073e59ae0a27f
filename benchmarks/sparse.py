"""Sparse, text-like input: fastprop.sklearn against scikit-learn's MLP (and a PyTorch loop on
torch.sparse.mm, when PyTorch is installed), side by side in one run on the same CSR data, with
the same hyperparameters: seconds per epoch once a fit is under way (a 3-epoch fit less a
1-epoch one, halved; median over rounds), the ratio to scikit-learn, the same for whole 3-epoch
fits (set-up included), both libraries' training losses after 3 epochs (the same training gives
the same losses), and the memory a fit adds, with its parts.

    pip install ".[bench]"                    # scikit-learn
    python benchmarks/sparse.py               # both data sets, every solver
    python benchmarks/sparse.py --quick       # a tenth of the rows, one round

Data (float32 CSR, values in (0, 1], rows scaled to unit norm as TF-IDF rows are; 10 classes
from a random linear teacher, so that the loss falls):
- tfidf:  20,000 x 100,000, density 0.001 (100 stored values a row)
- onehot: 100,000 x 5,000, density 0.004 (20 a row)

Network n_in-128-10, relu, softmax cross-entropy, batch 200, shuffled. Solvers:
plain sgd (momentum 0, alpha 0: the update touches only the rows a batch names), scikit-learn's
default sgd (Nesterov momentum 0.9, alpha 1e-4: every row moves every step) and adam (alpha 1e-4).
fastprop's dense path on the densified matrix runs beside where it fits in --dense-gib.
"""
import argparse
import gc
import statistics
import sys
import time
import tracemalloc
import warnings

import numpy as np

from _need import need

need("bench", "sklearn")

import scipy.sparse as sp  # noqa: E402
from machine import describe  # noqa: E402

warnings.filterwarnings("ignore")

import fastprop as fp  # noqa: E402
from fastprop.sklearn import MLPClassifier as FastMLP  # noqa: E402
from sklearn.neural_network import MLPClassifier as SkMLP  # noqa: E402

SETS = {"tfidf": (20_000, 100_000, 0.001), "onehot": (100_000, 5_000, 0.004)}
SOLVERS = {
    "sgd": dict(solver="sgd", momentum=0.0, alpha=0.0, learning_rate_init=0.05),
    "sgd-nesterov": dict(solver="sgd", momentum=0.9, nesterovs_momentum=True, alpha=1e-4,
                         learning_rate_init=0.01),
    "adam": dict(solver="adam", alpha=1e-4, learning_rate_init=1e-3),
}
EPOCHS = 3


def data(name, scale):
    n, n_in, density = SETS[name]
    n = int(n * scale)
    rng = np.random.default_rng(0)
    per_row = int(round(n_in * density))
    indices = np.concatenate([rng.choice(n_in, per_row, replace=False) for _ in range(n)])
    values = rng.uniform(0.05, 1.0, n * per_row).astype(np.float32)
    X = sp.csr_matrix((values, indices.astype(np.int32),
                       np.arange(0, n * per_row + 1, per_row)), shape=(n, n_in))
    X = sp.csr_matrix(X.multiply(1 / np.sqrt(X.multiply(X).sum(axis=1))), dtype=np.float32)
    teacher = rng.normal(size=(n_in, 10)).astype(np.float32)
    y = np.asarray(X @ teacher).argmax(axis=1)
    return X, y


def settings(solver):
    return dict(hidden_layer_sizes=(128,), batch_size=200, max_iter=EPOCHS, shuffle=True,
                random_state=0, tol=0.0, n_iter_no_change=10**6, **SOLVERS[solver])


def timed_fit(cls, solver, X, y):
    """(seconds per epoch under way, seconds of a whole EPOCHS-epoch fit, the fitted estimator)."""
    seconds = {}
    for epochs in (1, EPOCHS):
        gc.collect()
        est = cls(**dict(settings(solver), max_iter=epochs))
        start = time.perf_counter()
        est.fit(X, y)
        seconds[epochs] = time.perf_counter() - start
    return (seconds[EPOCHS] - seconds[1]) / (EPOCHS - 1), seconds[EPOCHS], est


def torch_epoch_seconds(X, y, solver, rounds):
    """A PyTorch loop with the same network: each batch's rows as a sparse CSR tensor, its
    first product torch.sparse.mm, the optimizer torch.optim's (dense gradients)."""
    import torch
    torch.manual_seed(0)
    n, n_in = X.shape
    W1 = torch.nn.Parameter(torch.randn(n_in, 128) * (2 / (n_in + 128)) ** 0.5)
    b1 = torch.nn.Parameter(torch.zeros(128))
    out = torch.nn.Linear(128, 10)
    params = [W1, b1] + list(out.parameters())
    hp = SOLVERS[solver]
    opt = torch.optim.Adam(params, lr=hp["learning_rate_init"]) if hp["solver"] == "adam" \
        else torch.optim.SGD(params, lr=hp["learning_rate_init"], momentum=hp["momentum"],
                             nesterov=hp.get("nesterovs_momentum", False) and hp["momentum"] > 0,
                             weight_decay=hp["alpha"])
    labels = torch.from_numpy(y.astype(np.int64))
    times = []
    for _ in range(rounds):
        order = np.random.default_rng(1).permutation(n)
        start = time.perf_counter()
        for lo in range(0, n, 200):
            rows = X[order[lo:lo + 200]]
            xb = torch.sparse_csr_tensor(torch.from_numpy(rows.indptr.astype(np.int64)),
                                         torch.from_numpy(rows.indices.astype(np.int64)),
                                         torch.from_numpy(rows.data), size=rows.shape)
            h = torch.relu(torch.sparse.mm(xb, W1) + b1)
            loss = torch.nn.functional.cross_entropy(out(h), labels[order[lo:lo + 200]])
            opt.zero_grad()
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def fit_memory(X, y, solver):
    """(bytes a fit of one epoch adds at its peak, its parts): the model is built first, as a
    user's model is; the rest is the fit's (NumPy's allocations, which tracemalloc sees)."""
    hp = SOLVERS[solver]
    model = fp.Sequential([fp.Dense(X.shape[1], 128, "relu"), fp.Dense(128, 10, "softmax")],
                          seed=0)
    opt = fp.Adam(hp["learning_rate_init"]) if hp["solver"] == "adam" else \
        fp.SGD(hp["learning_rate_init"], momentum=hp["momentum"],
               nesterov=hp.get("nesterovs_momentum", False))
    gc.collect()
    tracemalloc.start()
    model.fit(X, y, "cross_entropy", opt, epochs=1, batch_size=200, l2_penalty=hp["alpha"])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    parts = model.summary(batch_size=200, optimizer=opt)  # the engine's buffers, as it sizes them
    buffers = parts.workspace_bytes - parts.gather_bytes  # sparse X: no gathered dense rows
    return peak, parts.param_bytes, parts.optimizer_bytes, buffers


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the rows, one round")
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    parser.add_argument("--solvers", nargs="+", default=list(SOLVERS), choices=list(SOLVERS))
    parser.add_argument("--rounds", type=int, default=3, help="fastprop's rounds (median)")
    parser.add_argument("--dense-gib", type=float, default=3.0,
                        help="run fastprop's dense path where the densified X fits in this")
    args = parser.parse_args()
    scale, rounds = (0.1, 1) if args.quick else (1.0, args.rounds)
    try:
        import torch
        versions = f", PyTorch {torch.__version__} ({torch.get_num_threads()} threads)"
    except ImportError:
        torch = None
        versions = ", PyTorch not installed"
    import sklearn
    print("sparse input: seconds per epoch (median), ratio to scikit-learn\n" +
          describe(f", scikit-learn {sklearn.__version__}{versions}") + "\n")
    print("| data | solver | scikit-learn (s) | fastprop sparse (s) | speedup | 3-epoch fit "
          "speedup | fastprop dense (s) | PyTorch sparse.mm (s) | loss scikit-learn | "
          "loss fastprop |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in args.sets:
        X, y = data(name, scale)
        dense_fits = X.shape[0] * X.shape[1] * 4 / 2**30 <= args.dense_gib
        Xd = X.toarray() if dense_fits else None
        for solver in args.solvers:
            sk_time, sk_fit, sk = timed_fit(SkMLP, solver, X, y)
            runs = [timed_fit(FastMLP, solver, X, y) for _ in range(rounds)]
            fast_time = statistics.median(t for t, _, _ in runs)
            fast_fit, fast = statistics.median(f for _, f, _ in runs), runs[0][2]
            dense_time = statistics.median(timed_fit(FastMLP, solver, Xd, y)[0]
                                           for _ in range(rounds)) if dense_fits else None
            torch_time = torch_epoch_seconds(X, y, solver, rounds) if torch else None
            cell = lambda t: "-" if t is None else f"{t:.3f}"
            print(f"| {name} {X.shape[0]:,} x {X.shape[1]:,} | {solver} | {sk_time:.3f} | "
                  f"{fast_time:.3f} | {sk_time / fast_time:.1f}x | {sk_fit / fast_fit:.1f}x | "
                  f"{cell(dense_time)} | "
                  f"{cell(torch_time)} | {sk.loss_curve_[-1]:.5f} | "
                  f"{fast.loss_curve_[-1]:.5f} |", flush=True)
        del Xd
    print("\nmemory a fit of one epoch adds at its peak (fastprop.Sequential.fit on a built "
          "model; NumPy's allocations)\n")
    print("| data | solver | peak added (MB) | parameters (MB) | optimizer state (MB) | "
          "batch buffers (MB) | peak / (parameters + state + buffers) |\n"
          "|---|---|---:|---:|---:|---:|---:|")
    for name in args.sets:
        X, y = data(name, scale)
        for solver in args.solvers:
            peak, P, state, buffers = fit_memory(X, y, solver)
            print(f"| {name} | {solver} | {peak / 1e6:.1f} | {P / 1e6:.1f} | {state / 1e6:.1f} "
                  f"| {buffers / 1e6:.1f} | {peak / (P + state + buffers):.2f} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())

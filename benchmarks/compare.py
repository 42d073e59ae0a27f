#!/usr/bin/env python
"""fastprop against a NumPy loop, PyTorch, scikit-learn and the GEMM floor, side by side.

    pip install ".[bench]"                    # Cython and setuptools (the floor), matplotlib
    python benchmarks/compare.py --quick      # about a minute and a half (under two minutes)
    python benchmarks/compare.py              # the full run, float64 too (under fifteen minutes)

Every peer trains the same network on the same data with plain SGD, in this one process. The
peers take turns, round after round, and each figure is the median over the rounds, so a slow
spell of a shared machine hits them all alike. The GEMM floor is the same step's matrix products
alone, through the same BLAS as fastprop, into preallocated outputs: no training step can beat
it, so fastprop's time over the floor is its overhead. The output is a markdown table (also
written to benchmarks/results/latest.md) with the machine beside it, and a PNG of throughput
against layer width and batch size (benchmarks/results/scaling.png, with matplotlib).
"""
import argparse
import json
import os
import statistics
import importlib
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _need import need  # noqa: E402

need("bench", "Cython", "setuptools")  # the GEMM floor is built on first use

import fastprop as fp  # noqa: E402
from numpy_mlp import NumpyMLP  # noqa: E402


def _load_gemm_floor():
    """benchmarks/gemm_floor.pyx, built into benchmarks/build on first use (needs Cython and a
    C compiler, as building fastprop does)."""
    build = os.path.join(HERE, "build")
    sys.path.insert(0, build)
    try:
        from gemm_floor import gemm_floor
    except ImportError:
        subprocess.run([sys.executable, os.path.join(HERE, "setup_floor.py")], check=True,
                       stdout=subprocess.DEVNULL)
        importlib.invalidate_caches()
        from gemm_floor import gemm_floor
    return gemm_floor


gemm_floor = _load_gemm_floor()

try:
    import torch
except ImportError:
    torch = None
try:
    import sklearn
    from sklearn.neural_network import MLPClassifier, MLPRegressor
except ImportError:
    sklearn = None

LR = 0.01
SETTLE_SECONDS = 0.3
CONFIGS = {
    "tiny": dict(title="tiny 2-4-1, batch 100, sigmoid, BCE", sizes=[2, 4, 1],
                 acts=["sigmoid", "sigmoid"], loss="binary_cross_entropy", batch=100),
    "mnist": dict(title="MNIST-shaped 784-256-128-10, batch 64, relu, softmax CE",
                  sizes=[784, 256, 128, 10], acts=["relu", "relu", "softmax"],
                  loss="softmax_cross_entropy", batch=64),
    "wide": dict(title="wide 1024-2048-2048-1024, batch 256, relu, MSE",
                 sizes=[1024, 2048, 2048, 1024], acts=["relu", "relu", "identity"], loss="mse",
                 batch=256),
}
EPOCH = dict(title="epoch: 60,000 x 784, batch 64, 784-256-128-10, shuffled",
             sizes=[784, 256, 128, 10], acts=["relu", "relu", "softmax"],
             loss="softmax_cross_entropy", batch=64, n=60000)
EPOCH_TANH = dict(EPOCH, title="epoch: 60,000 x 784, batch 64, 784-256-128-10 tanh, shuffled",
                  acts=["tanh", "tanh", "softmax"])
# scikit-learn's handwritten digits (1,797 x 64; synthetic of that shape without scikit-learn)
DIGITS = dict(title="digits: 1,797 x 64, 64-128-10 tanh, batch 32, 30 epochs, shuffled",
              sizes=[64, 128, 10], acts=["tanh", "softmax"], loss="softmax_cross_entropy",
              batch=32, n=1797, epochs=30, data="digits")


# ----------------------------------------------------------------------------------------------
# Data and the peers. Each peer is a function run(n_steps) -> seconds for n_steps SGD steps.

def make_data(cfg, n, dtype, seed=0):
    if cfg.get("data") == "digits" and sklearn is not None:
        from sklearn.datasets import load_digits
        X, y = load_digits(return_X_y=True)
        return (X / 16.0).astype(dtype), y
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, cfg["sizes"][0])).astype(dtype)
    n_out = cfg["sizes"][-1]
    if cfg["loss"] == "softmax_cross_entropy":
        y = rng.integers(0, n_out, size=n)
    elif cfg["loss"] == "binary_cross_entropy":
        y = (X[:, :1] + X[:, 1:2] > 0).astype(dtype)
    else:
        y = rng.normal(size=(n, n_out)).astype(dtype)
    return X, y


def fastprop_model(cfg, dtype):
    layers = [fp.Dense(a, b, act) for a, b, act in zip(cfg["sizes"], cfg["sizes"][1:], cfg["acts"])]
    return fp.Sequential(layers, dtype=dtype, seed=0)


def peer_fastprop(cfg, X, y, dtype):
    model = fastprop_model(cfg, dtype)
    b = cfg["batch"]
    k = len(X) // b  # batches in the data: runs of n steps cycle over them, a fit per epoch

    def run(n_steps):
        full, rest = divmod(n_steps, k)
        start = time.perf_counter()
        if full:
            model.fit(X, y, cfg["loss"], fp.SGD(LR), epochs=full, batch_size=b, shuffle=False)
        if rest:
            model.fit(X[:rest * b], y[:rest * b], cfg["loss"], fp.SGD(LR), epochs=1,
                      batch_size=b, shuffle=False)
        return time.perf_counter() - start
    return run


def peer_numpy(cfg, X, y, dtype):
    model = fastprop_model(cfg, dtype)
    net = NumpyMLP(model.get_weights(), cfg["acts"], cfg["loss"], dtype)
    b = cfg["batch"]
    k = len(X) // b

    def run(n_steps):
        start = time.perf_counter()
        for s in range(n_steps):
            lo = (s % k) * b
            net.train_step(X[lo:lo + b], y[lo:lo + b], LR)
        return time.perf_counter() - start
    return run


def torch_net(cfg, dtype):
    acts = {"sigmoid": torch.nn.Sigmoid, "relu": torch.nn.ReLU, "tanh": torch.nn.Tanh}
    mods = []
    for i, (a, b, act) in enumerate(zip(cfg["sizes"], cfg["sizes"][1:], cfg["acts"])):
        mods.append(torch.nn.Linear(a, b))
        if i < len(cfg["acts"]) - 1:
            mods.append(acts[act]())
    net = torch.nn.Sequential(*mods).to(torch.float32 if dtype == np.float32 else torch.float64)
    crit = {"mse": torch.nn.MSELoss(), "binary_cross_entropy": torch.nn.BCEWithLogitsLoss(),
            "softmax_cross_entropy": torch.nn.CrossEntropyLoss()}[cfg["loss"]]
    return net, crit


def torch_targets(cfg, y):
    t = torch.from_numpy(y)
    return t.long() if cfg["loss"] == "softmax_cross_entropy" else t


def peer_torch(cfg, X, y, dtype):
    net, crit = torch_net(cfg, dtype)
    opt = torch.optim.SGD(net.parameters(), lr=LR)
    Xt, yt = torch.from_numpy(X), torch_targets(cfg, y)
    b = cfg["batch"]
    k = len(X) // b

    def run(n_steps):
        start = time.perf_counter()
        for s in range(n_steps):
            lo = (s % k) * b
            opt.zero_grad()
            loss = crit(net(Xt[lo:lo + b]), yt[lo:lo + b])
            loss.backward()
            opt.step()
        return time.perf_counter() - start
    return run


def sklearn_model(cfg):
    hidden = tuple(cfg["sizes"][1:-1])
    act = {"sigmoid": "logistic", "relu": "relu", "tanh": "tanh"}[cfg["acts"][0]]
    kw = dict(hidden_layer_sizes=hidden, activation=act, solver="sgd", learning_rate_init=LR,
              momentum=0.0, nesterovs_momentum=False, alpha=0.0, batch_size=cfg["batch"],
              shuffle=False, random_state=0)
    if cfg["loss"] == "mse":
        return MLPRegressor(**kw), None
    classes = np.arange(max(cfg["sizes"][-1], 2))
    return MLPClassifier(**kw), classes


def peer_sklearn(cfg, X, y, dtype):
    model, classes = sklearn_model(cfg)
    yy = y.ravel() if cfg["loss"] == "binary_cross_entropy" else y
    b = cfg["batch"]
    k = len(X) // b
    if classes is not None:
        model.partial_fit(X[:b], yy[:b], classes=classes)
    else:
        model.partial_fit(X[:b], yy[:b])

    def run(n_steps):
        start = time.perf_counter()
        for s in range(n_steps):
            lo = (s % k) * b
            model.partial_fit(X[lo:lo + b], yy[lo:lo + b])
        return time.perf_counter() - start
    return run


def peer_floor(cfg, X, y, dtype):
    return lambda n_steps: gemm_floor(cfg["sizes"], cfg["batch"], n_steps, dtype)


def peer_floor_written(cfg, X, y, dtype):
    return lambda n_steps: gemm_floor(cfg["sizes"], cfg["batch"], n_steps, dtype, True)


def step_flops(sizes, batch):
    """Multiply-adds x 2 of one step: forward, weight gradient, and delta but for layer 1."""
    prods = [a * b for a, b in zip(sizes, sizes[1:])]
    return 2 * batch * (2 * sum(prods) + sum(prods[1:]))


# ----------------------------------------------------------------------------------------------
# Measuring

def calibrate(run, target):
    """Steps per run so that a run lasts about `target` seconds."""
    n = 1
    while True:
        t = run(n)
        if t >= target / 8 or n >= 1 << 22:
            return max(1, int(n * target / max(t, 1e-9)))
        n *= 4


def settle():
    """Lets the previous peer's thread pools go idle: OpenBLAS and OpenMP workers spin for a
    while after a call, and would take the cores from whoever runs next."""
    time.sleep(SETTLE_SECONDS)


def race(peers, target, rounds):
    """Median steps/s of each peer over `rounds` rounds in which the peers take turns."""
    steps = {}
    for name, run in peers.items():
        settle()
        steps[name] = calibrate(run, target)
    rates = {name: [] for name in peers}
    for _ in range(rounds):
        for name, run in peers.items():
            settle()
            rates[name].append(steps[name] / run(steps[name]))
    return {name: statistics.median(r) for name, r in rates.items()}


def peers_for(dtype, full):
    peers = {"fastprop": peer_fastprop, "NumPy loop": peer_numpy}
    if torch is not None:
        peers["PyTorch"] = peer_torch
    if sklearn is not None and dtype == np.float32:
        peers["scikit-learn"] = peer_sklearn
    peers["GEMM floor"] = peer_floor
    peers["GEMM floor, W written"] = peer_floor_written
    return peers


def bench_step(key, dtype, args):
    cfg = CONFIGS[key]
    per_batch = cfg["batch"] * cfg["sizes"][0] * np.dtype(dtype).itemsize
    k = int(max(2, min(1000, (32 << 20) // per_batch)))  # at most 32 MB of batches
    X, y = make_data(cfg, k * cfg["batch"], dtype)
    peers = {name: make(cfg, X, y, dtype) for name, make in peers_for(dtype, args.full).items()}
    return race(peers, args.seconds, args.rounds)


def epoch_peers(cfg, X, y, dtype):
    """Each peer's run() -> seconds for cfg's epochs (1 unless given) over (X, y)."""
    b = cfg["batch"]
    n = len(X)
    epochs = cfg.get("epochs", 1)
    n_steps = -(-n // b) * epochs
    model = fastprop_model(cfg, dtype)

    def fp_epoch():
        start = time.perf_counter()
        model.fit(X, y, cfg["loss"], fp.SGD(LR), epochs=epochs, batch_size=b, seed=0)
        return time.perf_counter() - start

    net = NumpyMLP(fastprop_model(cfg, dtype).get_weights(), cfg["acts"], cfg["loss"], dtype)
    rng = np.random.default_rng(0)

    def np_epoch():
        start = time.perf_counter()
        for _ in range(epochs):
            net.train_epoch(X, y, b, LR, rng)
        return time.perf_counter() - start

    peers = {"fastprop": fp_epoch, "NumPy loop": np_epoch}
    if torch is not None:
        tnet, crit = torch_net(cfg, dtype)
        opt = torch.optim.SGD(tnet.parameters(), lr=LR)
        Xt, yt = torch.from_numpy(X), torch_targets(cfg, y)

        def torch_epoch():
            start = time.perf_counter()
            for _ in range(epochs):
                order = torch.randperm(n)
                for lo in range(0, n, b):
                    idx = order[lo:lo + b]
                    opt.zero_grad()
                    crit(tnet(Xt[idx]), yt[idx]).backward()
                    opt.step()
            return time.perf_counter() - start
        peers["PyTorch"] = torch_epoch
    if sklearn is not None and dtype == np.float32:
        skl, classes = sklearn_model(cfg)
        skl.set_params(shuffle=True)
        skl.partial_fit(X[:b], y[:b], classes=classes)

        def sklearn_epoch():
            start = time.perf_counter()
            for _ in range(epochs):
                skl.partial_fit(X, y)  # one pass over the data in batches of b
            return time.perf_counter() - start
        peers["scikit-learn"] = sklearn_epoch
    peers["GEMM floor"] = lambda: gemm_floor(cfg["sizes"], b, n_steps, dtype)
    peers["GEMM floor, W written"] = lambda: gemm_floor(cfg["sizes"], b, n_steps, dtype, True)
    return peers


def bench_epoch(dtype, args, cfg=EPOCH):
    X, y = make_data(cfg, cfg["n"] if not args.quick or "epochs" in cfg else cfg["n"] // 4,
                     dtype)
    peers = epoch_peers(cfg, X, y, dtype)
    for run in peers.values():  # the warm-up epoch (PyTorch's first is 3x slower)
        settle()
        run()
    rates = {name: [] for name in peers}
    for _ in range(max(3, args.rounds - 2)):
        for name, run in peers.items():
            settle()
            rates[name].append(len(X) * cfg.get("epochs", 1) / run())
    return {name: statistics.median(r) for name, r in rates.items()}, len(X)


# ----------------------------------------------------------------------------------------------
# Memory: a fit in a child process, its peak RSS over the RSS before it

def memory_child(key, dtype, epochs):
    """Runs in a child: prints JSON with RSS before, peak growth during a fit, and per epoch."""
    cfg = EPOCH if key == "epoch" else CONFIGS[key]
    n = cfg.get("n", 100 * cfg["batch"])
    X, y = make_data(cfg, n, dtype)
    model = fastprop_model(cfg, dtype)

    def status(field):
        for line in open("/proc/self/status"):
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    rss_before = status("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets the peak (VmHWM) to the current RSS
    per_epoch = []
    for _ in range(epochs):
        model.fit(X, y, cfg["loss"], fp.SGD(LR), epochs=1, batch_size=cfg["batch"], seed=0)
        per_epoch.append(status("VmRSS") - rss_before)
    buffers = sum(2 * cfg["batch"] * s for s in cfg["sizes"][1:]) + cfg["batch"] * (
        cfg["sizes"][0] + 2 * cfg["sizes"][-1] + 1)
    print(json.dumps(dict(peak=status("VmHWM") - rss_before, per_epoch=per_epoch,
                          data=X.nbytes + y.nbytes, params=2 * model.params.nbytes,
                          buffers=buffers * np.dtype(dtype).itemsize + cfg["batch"] * 8 + n * 8)))


def measure_memory(key, dtype, epochs=5):
    if not os.path.exists("/proc/self/clear_refs"):
        return None
    out = subprocess.run([sys.executable, __file__, "--memory-child", key, "--dtype",
                          np.dtype(dtype).name, "--epochs", str(epochs)],
                         capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def mib(n):
    return f"{n / 2**20:.1f}"


# ----------------------------------------------------------------------------------------------
# The machine, the table, the plot

def machine():
    from machine import describe
    return describe((f", PyTorch {torch.__version__} ({torch.get_num_threads()} threads)" if torch
                     else ", PyTorch not installed")
                    + (f", scikit-learn {sklearn.__version__}" if sklearn
                       else ", scikit-learn not installed"))


def table(title, rates, unit, flops=None, memory=None):
    ours = rates["fastprop"]
    head = f"| {title} | {unit} | GFLOP/s | fastprop is ... x this |\n|---|---:|---:|---:|\n"
    rows = []
    for name, r in rates.items():
        gf = f"{r * flops / 1e9:.2f}" if flops else ""
        ratio = "" if name == "fastprop" else f"{ours / r:.2f}"
        rows.append(f"| {name} | {r:,.0f} | {gf} | {ratio} |")
    note = ""
    if memory:
        note = (f"\nfastprop fit memory: peak RSS growth {mib(memory['peak'])} MiB for "
                f"{mib(memory['params'])} MiB of parameters and gradients and "
                f"{mib(memory['buffers'])} MiB of batch buffers and index (data: "
                f"{mib(memory['data'])} MiB, already resident); RSS growth after each of "
                f"{len(memory['per_epoch'])} epochs: "
                + ", ".join(mib(m) for m in memory["per_epoch"]) + " MiB\n")
    return head + "\n".join(rows) + "\n" + note


def scaling_plot(args, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot", file=sys.stderr)
        return None
    widths = [16, 128, 1024] if args.quick else [16, 32, 46, 64, 128, 256, 512, 1024, 2048]
    batches = [16, 128, 1024] if args.quick else [8, 16, 32, 64, 128, 256, 512, 1024, 2048]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, xs, label, mk in [
        (axes[0], widths, "hidden width w (784-w-w-10, batch 64)",
         lambda w: dict(CONFIGS["mnist"], sizes=[784, w, w, 10], batch=64)),
        (axes[1], batches, "batch size (784-256-128-10)",
         lambda b_: dict(CONFIGS["mnist"], batch=b_)),
    ]:
        series = {}
        for x in xs:
            cfg = mk(x)
            per_batch = cfg["batch"] * 784 * 4
            X, y = make_data(cfg, int(max(2, min(200, (16 << 20) // per_batch))) * cfg["batch"],
                             np.float32)
            peers = {n: m(cfg, X, y, np.float32) for n, m in peers_for(np.float32, False).items()
                     if n != "scikit-learn"}
            rates = race(peers, args.seconds / 3, 3)
            for name, r in rates.items():
                series.setdefault(name, []).append(r * cfg["batch"])
        for name, ys in series.items():
            ax.plot(xs, ys, marker="o", label=name,
                    linestyle="--" if name.startswith("GEMM floor") else "-")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("training samples / s (float32)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle(f"fastprop: throughput against the work ({os.cpu_count()} cores)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, float32 only")
    parser.add_argument("--threads", type=int, default=None,
                        help="bound BLAS, OpenMP and PyTorch to this many threads")
    parser.add_argument("--only", nargs="*", choices=list(CONFIGS) + ["epoch", "plot"])
    parser.add_argument("--readme", action="store_true", help="write the table into docs/performance.md")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    parser.add_argument("--dtype", default="float32", help=argparse.SUPPRESS)
    parser.add_argument("--epochs", type=int, default=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child, np.dtype(args.dtype), args.epochs)
        return
    args.full = not args.quick
    global SETTLE_SECONDS
    SETTLE_SECONDS = 0.15 if args.quick else 0.3
    args.rounds = 3 if args.quick else 7
    args.seconds = 0.2 if args.quick else 0.5
    if args.threads:
        from threadpoolctl import threadpool_limits
        threadpool_limits(args.threads)
        if torch is not None:
            torch.set_num_threads(args.threads)
    parts = ["fastprop - " + ("quick run" if args.quick else "full run") + ", "
             + time.strftime("%Y-%m-%d"), "", machine(), ""]
    parts.append("Steps per second are medians over rounds in which the peers take turns; "
                 "'fastprop is ... x this' is fastprop's rate over the row's.\n")
    dtypes = [np.float32] if args.quick else [np.float32, np.float64]
    wanted = args.only or list(CONFIGS) + ["epoch", "plot"]
    start = time.perf_counter()
    for dtype in dtypes:
        for key in CONFIGS:
            if key not in wanted:
                continue
            cfg = CONFIGS[key]
            rates = bench_step(key, dtype, args)
            mem = measure_memory(key, dtype) if dtype == np.float32 else None
            parts.append(table(f"{cfg['title']} ({np.dtype(dtype).name})", rates, "steps/s",
                               step_flops(cfg["sizes"], cfg["batch"]), mem))
            print(parts[-1], flush=True)
        for cfg in (EPOCH, EPOCH_TANH, DIGITS) if "epoch" in wanted else ():
            rates, n = bench_epoch(dtype, args, cfg)
            mem = measure_memory("epoch", dtype) if dtype == np.float32 and cfg is EPOCH \
                else None
            title = cfg["title"] + ("" if n == cfg["n"] else f" ({n:,} samples)")
            parts.append(table(f"{title} ({np.dtype(dtype).name})", rates, "samples/s",
                               step_flops(cfg["sizes"], 1), mem))
            print(parts[-1], flush=True)
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    if "plot" in wanted:
        path = scaling_plot(args, os.path.join(HERE, "results", "scaling.png"))
        if path:
            parts.append("Throughput against the work: `benchmarks/results/scaling.png`.\n")
    parts.append(f"({time.perf_counter() - start:.0f} s; reproduce with "
                 f"`python benchmarks/compare.py{' --quick' if args.quick else ''}`)")
    text = "\n".join(parts)
    with open(os.path.join(HERE, "results", "latest.md"), "w") as f:
        f.write(text + "\n")
    print(parts[0], "\n", parts[2], "\n", parts[-1], sep="")
    if args.readme:
        readme = os.path.join(HERE, os.pardir, "docs/performance.md")
        content = open(readme).read()
        a, b = "<!-- benchmark table: start -->", "<!-- benchmark table: end -->"
        if a in content and b in content:
            content = content[:content.index(a) + len(a)] + "\n" + text + "\n" + content[content.index(b):]
            with open(readme, "w") as f:
                f.write(content)


if __name__ == "__main__":
    main()

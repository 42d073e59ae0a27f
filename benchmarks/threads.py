"""How many threads a fit should use, by the size of its work: one thread against all usable
cores for networks from the seeds' 2-4-1 to the wide 1024-2048-2048-1024, idle and busy.

Each row trains the same model for a fixed number of steps with n_threads=1 and n_threads=<all
cores>, alternating, median of 5, and reports steps/s, the ratio, the work of a step (multiply-
adds of its forward pass: batch x sum of n_in x n_out) and the limit fastprop's default
(fastprop.threads.default_threads) sets at the end of the row ("as set": none, the thread pools
are left as they are). With --busy, as many spinning processes as cores
load the machine first (and the table waits until the 1-minute load average shows them). The threshold in
fastprop/threads.py (THREADS_MIN_WORK) comes from this table.

    python benchmarks/threads.py [--busy] [--quick]
"""
import argparse
import multiprocessing
import os
import statistics
import sys
import time

import numpy as np

import fastprop as fp
from fastprop.threads import default_threads, step_work

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from machine import describe  # noqa: E402

# (sizes, hidden activation, batch)
CASES = [([2, 4, 1], "sigmoid", 100), ([64, 128, 10], "tanh", 32), ([64, 128, 10], "tanh", 64),
         ([64, 128, 10], "tanh", 128), ([2, 256, 256, 3], "relu", 8),
         ([2, 256, 256, 3], "relu", 32), ([784, 8, 8, 10], "relu", 64),
         ([784, 16, 16, 10], "relu", 32), ([784, 16, 16, 10], "relu", 64), ([784, 46, 46, 10], "relu", 64),
         ([784, 64, 64, 10], "relu", 64), ([784, 128, 128, 10], "relu", 64),
         ([784, 256, 128, 10], "relu", 64), ([784, 256, 128, 10], "relu", 256),
         ([1024, 2048, 2048, 1024], "relu", 256)]


def model_for(sizes, act):
    acts = [act] * (len(sizes) - 2) + ["identity"]
    return fp.Sequential([fp.Dense(a, b, f) for a, b, f in zip(sizes, sizes[1:], acts)],
                         dtype="float32", seed=0)


def steps_per_second(sizes, act, batch, threads, steps):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(batch * 4, sizes[0])).astype(np.float32)
    y = rng.normal(size=(batch * 4, sizes[-1])).astype(np.float32)
    model = model_for(sizes, act)
    epochs = max(1, steps // 4)
    start = time.perf_counter()
    model.fit(X, y, "mse", fp.SGD(1e-4), epochs=epochs, batch_size=batch, shuffle=False,
              n_threads=threads)
    return epochs * 4 / (time.perf_counter() - start)


def spin(stop):
    while not stop.is_set():
        pass


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--busy", action="store_true", help="load every core with a spinning process")
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    cores = len(os.sched_getaffinity(0))
    stop, spinners = multiprocessing.Event(), []
    if args.busy:
        spinners = [multiprocessing.Process(target=spin, args=(stop,), daemon=True)
                    for _ in range(cores)]
        for s in spinners:
            s.start()
        deadline = time.monotonic() + 75  # until the 1-minute load average sees them
        while os.getloadavg()[0] < cores - 0.3 and time.monotonic() < deadline:
            time.sleep(1)
    print(f"threads: 1 against {cores}, float32, MSE, SGD"
          + (f", with {cores} spinning processes" if args.busy else "") + "\n" + describe())
    print(f"- load average at the start: {os.getloadavg()[0]:.1f}\n")
    print(f"| network | batch | work per step (M multiply-adds) | 1 thread (steps/s) | {cores} "
          f"threads (steps/s) | {cores} / 1 | default |\n|---|---:|---:|---:|---:|---:|---:|")
    try:
        for sizes, act, batch in CASES:
            macs = step_work(model_for(sizes, act), batch)
            budget = 0.15 if args.quick else 0.4  # seconds per run, roughly
            steps = int(max(8, min(20000, budget * 2e9 / (6 * macs + 2e4))))
            one, many = [], []
            for _ in range(3 if args.quick else 5):
                one.append(steps_per_second(sizes, act, batch, 1, steps))
                many.append(steps_per_second(sizes, act, batch, cores, steps))
            a, b = statistics.median(one), statistics.median(many)
            picked = default_threads(model_for(sizes, act), batch) or "as set"
            print(f"| {'-'.join(map(str, sizes))} {act} | {batch} | {macs / 1e6:.3f} | {a:,.0f} "
                  f"| {b:,.0f} | {b / a:.2f} | {picked} |")
    finally:
        stop.set()
        for s in spinners:
            s.join()


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Data-parallel training on MPI: samples/s on 1 and 2 ranks of this machine, the time each step
spends in its Allreduce and in compute, and a projection to more machines.

    pip install ".[mpi]"                          # mpi4py, and Open MPI's wheel with mpirun
    python benchmarks/distributed.py              # about a minute
    python benchmarks/distributed.py --steps 40   # more steps per run

The wide configuration (1024-2048-2048-1024 relu, MSE, float32, global batch 512) is trained
with `fit(..., comm=...)` by `mpirun -n 1` and `mpirun -n 2` in turn (rounds alternate, medians
reported), and by a plain fit in this process for reference. Each rank times its calls to
Allreduce (the gradient sum; the time includes waiting for the slower rank) and, after
training, a bare Allreduce of the same buffer (the transfer alone). The projection uses the
measured compute time per sample and a ring Allreduce's cost, 2 (p - 1) / p x the buffer's bytes
/ the link's bandwidth.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _need import need  # noqa: E402

need("mpi", "mpi4py")

import fastprop as fp  # noqa: E402

SIZES = (1024, 2048, 2048, 1024)
BATCH = 512


def wide_model():
    layers = [fp.Dense(a, b, "relu" if i < len(SIZES) - 2 else "identity")
              for i, (a, b) in enumerate(zip(SIZES[:-1], SIZES[1:]))]
    return fp.Sequential(layers, dtype="float32", seed=0)


def wide_data(steps):
    rng = np.random.default_rng(0)
    n = steps * BATCH
    return (rng.standard_normal((n, SIZES[0]), np.float32),
            rng.standard_normal((n, SIZES[-1]), np.float32) * 0.1)


def worker(steps, threads):
    """Under mpirun: one timed fit of `steps` global batches; rank 0 prints a JSON line."""
    from fastprop import distributed
    comm = distributed.world()

    class Timed(distributed.Communicator):
        def __init__(self, inner):
            self.inner, self.rank, self.size = inner, inner.rank, inner.size
            self.local_size, self.seconds, self.calls = inner.local_size, 0.0, 0

        def allreduce(self, buf):
            start = time.perf_counter()
            self.inner.allreduce(buf)
            if buf.size > 1000:  # the gradients, not the epoch's two totals
                self.seconds += time.perf_counter() - start
                self.calls += 1

        def broadcast(self, buf, root=0):
            self.inner.broadcast(buf, root)

    X, Y = wide_data(steps)
    model = wide_model()
    timed = Timed(comm)
    model.fit(X[:2 * BATCH], Y[:2 * BATCH], "mse", fp.SGD(1e-4), batch_size=BATCH,
              shuffle=False, comm=comm)  # warm up: workspace, BLAS buffers, MPI connections
    start = time.perf_counter()
    model.fit(X, Y, "mse", fp.SGD(1e-4), batch_size=BATCH, shuffle=False, comm=timed,
              n_threads=threads)
    seconds = time.perf_counter() - start
    grads = model.grads
    bare = []
    for _ in range(5):
        comm.comm.Barrier()
        start = time.perf_counter()
        comm.allreduce(grads)
        bare.append(time.perf_counter() - start)
    if comm.rank == 0:
        print(json.dumps({"ranks": comm.size,
                          "threads": threads or distributed.default_threads(comm),
                          "seconds": seconds, "steps": steps, "allreduce": timed.seconds,
                          "allreduce_calls": timed.calls, "bare_allreduce": min(bare),
                          "bytes": grads.nbytes}))


def single(steps):
    """The same fit without comm, in this process (all cores), for reference."""
    X, Y = wide_data(steps)
    model = wide_model()
    model.fit(X[:2 * BATCH], Y[:2 * BATCH], "mse", fp.SGD(1e-4), batch_size=BATCH, shuffle=False)
    start = time.perf_counter()
    model.fit(X, Y, "mse", fp.SGD(1e-4), batch_size=BATCH, shuffle=False)
    return time.perf_counter() - start


def launch(ranks, threads, steps):
    mpirun = shutil.which("mpirun") or shutil.which("mpiexec")
    cmd = [mpirun, "-n", str(ranks), "--oversubscribe"]
    if os.geteuid() == 0:
        cmd.append("--allow-run-as-root")
    cmd += [sys.executable, os.path.abspath(__file__), "--worker", "--steps", str(steps),
            "--threads", str(threads or 0)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def ring_seconds(nbytes, p, gbit):
    return 2 * (p - 1) / p * nbytes / (gbit * 1e9 / 8)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=16, help="global batches per timed fit")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds (median)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args.steps, args.threads or None)
    if not (shutil.which("mpirun") or shutil.which("mpiexec")):
        sys.exit('distributed.py needs mpirun (Open MPI) on the PATH: pip install ".[mpi]"')
    from machine import describe
    print(f"data-parallel fit: {'-'.join(map(str, SIZES))} relu, MSE, float32, global batch "
          f"{BATCH}, {args.steps} steps per fit, {args.rounds} rounds\n" + describe() + "\n")
    # (ranks, threads per rank; None: the default, the node's cores / its ranks)
    runs = {(1, None): [], (1, 1): [], (2, None): []}
    plain = []
    for _ in range(args.rounds):
        for ranks, threads in runs:
            runs[ranks, threads].append(launch(ranks, threads, args.steps))
        plain.append(single(args.steps))
    rows = ["| run | samples/s | step (ms) | Allreduce per step (ms) | bare Allreduce (ms) | "
            "compute per step (ms) | threads per rank |", "|---|---:|---:|---:|---:|---:|---:|"]
    med = {}
    for (ranks, threads), results in runs.items():
        secs = statistics.median(r["seconds"] for r in results)
        red = statistics.median(r["allreduce"] / r["allreduce_calls"] for r in results)
        bare = statistics.median(r["bare_allreduce"] for r in results)
        step = secs / args.steps
        med[ranks, threads] = dict(step=step, allreduce=red, bare=bare, compute=step - red,
                          bytes=results[0]["bytes"])
        rows.append(f"| {ranks} rank{'s' * (ranks > 1)} (mpirun{', n_threads=1' * (threads == 1)}) | {args.steps * BATCH / secs:,.0f} "
                    f"| {step * 1e3:.1f} | {red * 1e3:.2f} | {bare * 1e3:.2f} | "
                    f"{(step - red) * 1e3:.1f} | {results[0]['threads']} |")
    secs = statistics.median(plain)
    rows.append(f"| fit without comm (one process) | {args.steps * BATCH / secs:,.0f} | "
                f"{secs / args.steps * 1e3:.1f} | - | - | - | {os.cpu_count()} |")
    print("\n".join(rows))
    one, one_thread, two = med[1, None], med[1, 1], med[2, None]
    print(f"\n2 ranks vs 1 rank with the same cores: {one['step'] / two['step']:.2f}x; vs 1 rank "
          f"of one thread: {one_thread['step'] / two['step']:.2f}x; gradient buffer "
          f"{two['bytes'] / 2**20:.1f} MiB; Allreduce {two['allreduce'] / two['step']:.1%} of a "
          f"2-rank step")
    # one machine = this one, one rank using all its cores: its compute per sample as measured
    per_sample = one["compute"] / BATCH
    nbytes = two["bytes"]
    print("\nProjection (machines like this one, one rank each on all its cores, a ring "
          "Allreduce between them, compute per sample as measured above; latency and overlap "
          "ignored):\n")
    print("| machines | link | Allreduce (ms) | global batch 512: step (ms), efficiency | "
          "512 per machine: step (ms), efficiency |")
    print("|---:|---|---:|---:|---:|")
    for p in (8, 64):
        for gbit in (10, 100):
            comm_s = ring_seconds(nbytes, p, gbit)
            strong = per_sample * BATCH / p
            weak = per_sample * BATCH
            print(f"| {p} | {gbit} Gbit/s | {comm_s * 1e3:.1f} | {(strong + comm_s) * 1e3:.1f}, "
                  f"{strong / (strong + comm_s):.0%} | {(weak + comm_s) * 1e3:.1f}, "
                  f"{weak / (weak + comm_s):.0%} |")


if __name__ == "__main__":
    main()

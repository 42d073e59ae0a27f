"""Data-parallel fits shared by the tests: the cases, and a communicator of threads in one
process (the same sums as MPI's for two ranks: a + b). Run under mpirun, this file fits every
case on MPI.COMM_WORLD and rank 0 saves every rank's results to the file named by argv[1]."""
import threading

import numpy as np

import fastprop as fp
from fastprop.distributed import Communicator


def data(n=103, n_in=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_in))
    labels = rng.integers(0, 3, n)
    Y = np.tanh(X @ rng.normal(size=(n_in, 2)))
    weights = rng.uniform(0, 2, n)
    return X, labels, Y, weights


def model(case, dtype):
    if case["loss"] == "mse":
        layers = [fp.Dense(5, 12, "relu"), fp.Dropout(0.25), fp.Dense(12, 2, "identity")]
    else:
        layers = [fp.Dense(5, 16, "tanh"), fp.Dropout(0.3), fp.Dense(16, 8, "sigmoid"),
                  fp.Dense(8, 3, "softmax")]
    return fp.Sequential(layers, dtype=dtype, seed=3)


OPTIMIZERS = {"sgd": lambda: fp.SGD(lr=0.1), "momentum": lambda: fp.SGD(lr=0.05, momentum=0.9),
              "adam": lambda: fp.Adam(lr=0.01), "adamw": lambda: fp.AdamW(lr=0.01),
              "rmsprop": lambda: fp.RMSprop(lr=0.005)}

# batch 20 of 103 rows: a last batch of 3; batch 1: one rank of two has no row in a batch
CASES = {
    "sgd": dict(loss="softmax_cross_entropy", optimizer="sgd", batch_size=20),
    "adam": dict(loss="softmax_cross_entropy", optimizer="adam", batch_size=20),
    "momentum_mse": dict(loss="mse", optimizer="momentum", batch_size=16),
    "weighted_l2": dict(loss="softmax_cross_entropy", optimizer="adamw", batch_size=25,
                        weighted=True, l2_penalty=0.01),
    "unshuffled": dict(loss="mse", optimizer="rmsprop", batch_size=32, shuffle=False),
    "batch_of_one": dict(loss="softmax_cross_entropy", optimizer="sgd", batch_size=1, n=9),
    # a last batch of one row: rank 0's part is empty, the L2 term still counted once
    "l2_last_row": dict(loss="mse", optimizer="sgd", batch_size=32, n=33, l2_penalty=0.5),
    "l2_batch_of_two": dict(loss="softmax_cross_entropy", optimizer="momentum", batch_size=2,
                            n=11, l2_penalty=0.1, weighted=True),
}


def fit(case, dtype="float64", comm=None, epochs=3):
    X, labels, Y, weights = data(case.get("n", 103))
    m = model(case, dtype)
    y = Y if case["loss"] == "mse" else labels
    history = m.fit(X, y, case["loss"], optimizer=OPTIMIZERS[case["optimizer"]](),
                    epochs=epochs, batch_size=case["batch_size"], seed=11,
                    shuffle=case.get("shuffle", True), l2_penalty=case.get("l2_penalty", 0.0),
                    sample_weight=weights if case.get("weighted") else None, comm=comm)
    return m, history


class ThreadGroup:
    """`size` ranks as threads of one process: rank r's communicator is group.comm(r). A rank
    left alone in a collective (the others raised, or took another path) times out after
    `timeout` seconds with threading.BrokenBarrierError, as an MPI job would hang."""

    def __init__(self, size, timeout=20):
        self.size = size
        self.barrier = threading.Barrier(size, timeout=timeout)
        self.slots = [None] * size

    def comm(self, rank):
        return _ThreadComm(self, rank)

    def run(self, fn):
        """fn(comm) on every rank, each in its thread; returns the results in rank order."""
        results, errors = [None] * self.size, []

        def target(rank):
            try:
                results[rank] = fn(self.comm(rank))
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=target, args=(r,)) for r in range(self.size)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        return results


class _ThreadComm(Communicator):
    def __init__(self, group, rank):
        self.group, self.rank, self.size, self.local_size = group, rank, group.size, group.size

    def allreduce(self, buf):
        g = self.group
        g.slots[self.rank] = buf.copy()
        g.barrier.wait()
        total = g.slots[0].copy()
        for part in g.slots[1:]:
            total += part  # in rank order, on every rank: the same sum everywhere
        g.barrier.wait()
        buf[...] = total

    def broadcast(self, buf, root=0):
        g = self.group
        if self.rank == root:
            g.slots[root] = buf.copy()
        g.barrier.wait()
        buf[...] = g.slots[root]
        g.barrier.wait()


if __name__ == "__main__":
    import sys
    from fastprop import distributed

    world = distributed.world()
    out = {}
    for name, case in CASES.items():
        for dtype in ("float64", "float32"):
            m, h = fit(case, dtype, comm=world)
            params = np.ascontiguousarray(m.params, np.float64)
            gathered = np.zeros((world.size, params.size))
            gathered[world.rank] = params
            world.allreduce(gathered)  # every rank's weights, to compare on rank 0
            out[f"{name}/{dtype}/params"] = gathered
            out[f"{name}/{dtype}/loss"] = np.array(h.loss)
    out["threads"] = np.array([distributed.default_threads(world)])
    if world.rank == 0:
        np.savez(sys.argv[1], size=world.size, **out)

"""Data-parallel training on MPI: the same fit, split across ranks.

    pip install "fastprop[mpi]"                       # mpi4py, and Open MPI's mpirun
    mpirun -n 2 python examples/train_mpi.py          # on one machine
    mpirun -n 2 --oversubscribe --allow-run-as-root python examples/train_mpi.py
                                                      # 2 cores, as root in a container

Every rank runs this same script on the same data. batch_size is the global batch: each rank
computes the gradient of its part of every batch, one Allreduce sums them, and every rank applies
the same update, so the ranks hold identical weights and the result equals a single-process fit
with batch_size=256 (to rounding). Only rank 0 prints, validates and writes the checkpoint.
"""
import os
import tempfile

import numpy as np

import fastprop as fp
from fastprop import distributed

comm = distributed.world()  # MPI.COMM_WORLD, MPI initialized for threaded ranks

# The same data on every rank. For data larger than memory, save it once with np.save and open
# it on every rank with np.load(path, mmap_mode="r"): each rank then reads the rows it touches.
rng = np.random.default_rng(0)
n, n_in = 20_000, 64
X = rng.standard_normal((n, n_in)).astype(np.float32)
w = rng.standard_normal((n_in, 10))
y = np.argmax(X @ w + 0.5 * rng.standard_normal((n, 10)), axis=1)

model = fp.Sequential([fp.Dense(n_in, 256, "relu"), fp.Dropout(0.1),
                       fp.Dense(256, 256, "relu"), fp.Dense(256, 10, "softmax")],
                      dtype="float32", seed=0)
checkpoint = os.path.join(tempfile.gettempdir(), "train_mpi_best.fp")
history = model.fit(X, y, "softmax_cross_entropy", optimizer=fp.Adam(lr=1e-3), epochs=8,
                    batch_size=256, seed=1, validation_split=0.1, verbose=1,
                    callbacks=[fp.EarlyStopping(patience=2),
                               fp.ModelCheckpoint(checkpoint, monitor="val_loss")],
                    comm=comm)

# every rank holds the same weights: check it with one more Allreduce
total = model.params.astype(np.float64)
comm.allreduce(total)
same = np.array_equal(total, comm.size * model.params.astype(np.float64))
if comm.rank == 0:
    print(f"{comm.size} rank(s), {distributed.default_threads(comm)} thread(s) each: "
          f"val_accuracy {history.metrics['val_accuracy'][-1]:.4f}, "
          f"{history.samples_per_sec[-1]:,.0f} samples/s, identical weights on every rank: {same}; "
          f"best weights in {checkpoint}")

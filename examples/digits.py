"""Handwritten digits (the 8x8 set that ships with scikit-learn, no download): a 64-128-10
network trained with Adam, validation, early stopping and a cosine schedule."""
import sys

import numpy as np

import fastprop as fp
from fastprop import schedules

try:
    from sklearn.datasets import load_digits
except ImportError:
    sys.exit("this example needs scikit-learn: pip install scikit-learn")

digits = load_digits()
X = digits.data / 16.0
y = digits.target
order = np.random.default_rng(0).permutation(len(X))
X, y = X[order], y[order]
X_train, y_train, X_test, y_test = X[:1400], y[:1400], X[1400:], y[1400:]

model = fp.Sequential([fp.Dense(64, 128, activation="relu"),
                       fp.Dense(128, 10, activation="softmax")], dtype="float32", seed=0)
history = model.fit(X_train, y_train, loss="softmax_cross_entropy",
                    optimizer=fp.Adam(lr=3e-3), epochs=60, batch_size=32,
                    validation_split=0.15, metrics=["accuracy"],
                    lr_schedule=schedules.Cosine(epochs=60, warmup=3),
                    callbacks=[fp.EarlyStopping(patience=8)], verbose=1)
result = model.evaluate(X_test, y_test, "softmax_cross_entropy", metrics=["top_3_accuracy"])
print(f"test accuracy {result['accuracy']:.4f}, top-3 {result['top_3_accuracy']:.4f}, "
      f"{len(history)} epochs")

"""The seed document's two-layer NumPy network (X = randn(100, 2), y = x0 + x1 > 0), trained
with fastprop from the same initial weights (np.random.seed(42), randn * 0.01)."""
import numpy as np

import fastprop as fp

np.random.seed(42)
X = np.random.randn(100, 2)
y = (X[:, 0] + X[:, 1] > 0).astype(float).reshape(-1, 1)
W1 = np.random.randn(2, 4) * 0.01   # the seed's SimpleNeuralNetwork draws these after X
W2 = np.random.randn(4, 1) * 0.01

model = fp.Sequential([fp.Dense(2, 4, activation="sigmoid"),
                       fp.Dense(4, 1, activation="sigmoid")], dtype="float64")
model.set_weights([(W1, np.zeros(4)), (W2, np.zeros(1))])
# The seed's update dz2 = a2 - y is the gradient of binary cross-entropy on a sigmoid output.
history = model.fit(X, y, loss="binary_cross_entropy", optimizer=fp.SGD(lr=0.1),
                    epochs=1000, batch_size=100, shuffle=False)
for epoch in range(0, 1000, 100):
    print(f"Epoch {epoch}, binary cross-entropy: {history.loss[epoch]:.6f}")

test_X = np.array([[1, 1], [-1, -1], [1, -1]])
print("\nTest predictions:")
for x, pred in zip(test_X, model.predict(test_X)):
    print(f"Input: {x}, Prediction: {pred[0]:.4f}")

"""A NumPy training loop in the seeds' style: the reference fastprop races, and a test oracle.

It generalizes the seed's SimpleNeuralNetwork (002, section 5) to any depth, the activations
identity, sigmoid, tanh, relu, and the losses mse, binary cross-entropy (sigmoid output) and
softmax cross-entropy (softmax output), with the same layout W: (n_in, n_out) and plain SGD.
It is written the way a NumPy user writes it: clear, vectorized, allocating as it goes.
"""
import numpy as np


def _act(z, name):
    if name == "sigmoid":
        return 1 / (1 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0)
    if name == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    return z


def _act_derivative(a, name):
    # through the activation's output, as the seed's sigmoid_derivative(x) = x (1 - x)
    if name == "sigmoid":
        return a * (1 - a)
    if name == "tanh":
        return 1 - a * a
    if name == "relu":
        return (a > 0).astype(a.dtype)
    return np.ones_like(a)


class NumpyMLP:
    """sizes [n_in, h1, ..., n_out], activations per layer; weights as `weights` [(W, b), ...]."""

    def __init__(self, weights, activations, loss, dtype=np.float32):
        self.W = [np.array(W, dtype=dtype) for W, _ in weights]
        self.b = [np.array(b, dtype=dtype) for _, b in weights]
        self.activations = list(activations)
        self.loss = loss

    def forward(self, X):
        self.a = [X]
        for W, b, name in zip(self.W, self.b, self.activations):
            self.a.append(_act(self.a[-1] @ W + b, name))
        return self.a[-1]

    def backward(self, X, y, learning_rate):
        m = X.shape[0]
        out = self.a[-1]
        if self.loss == "softmax_cross_entropy":
            Y = np.eye(out.shape[1], dtype=out.dtype)[y] if y.ndim == 1 else y
            dz = (out - Y) / m                       # softmax fused with cross-entropy
        elif self.loss == "binary_cross_entropy":
            dz = (out - y) / out.size                # sigmoid fused with BCE (seed: dz2 = a2 - y)
        else:
            dz = 2 * (out - y) / out.size * _act_derivative(out, self.activations[-1])
        for l in range(len(self.W) - 1, -1, -1):
            dW = self.a[l].T @ dz
            db = dz.sum(axis=0)
            if l:
                dz = (dz @ self.W[l].T) * _act_derivative(self.a[l], self.activations[l - 1])
            self.W[l] -= learning_rate * dW
            self.b[l] -= learning_rate * db

    def train_step(self, X, y, learning_rate):
        self.forward(X)
        self.backward(X, y, learning_rate)

    def train_epoch(self, X, y, batch_size, learning_rate, rng=None):
        order = rng.permutation(len(X)) if rng is not None else np.arange(len(X))
        for lo in range(0, len(X), batch_size):
            idx = order[lo:lo + batch_size]
            self.train_step(X[idx], y[idx], learning_rate)

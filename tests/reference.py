"""NumPy references of fastprop's kernels: the oracle the compiled code is tested against.

Written for clarity, in float64 or the inputs' dtype, with nothing shared with the C code.
"""
import numpy as np


def activation(z, name, slope=0.01):
    if name == "identity":
        return z.copy()
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0)
    if name == "leaky_relu":
        return np.where(z > 0, z, slope * z)
    if name == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    raise ValueError(name)


def derivative(z, name, slope=0.01):
    """f'(z) computed from z (not from a), as calculus writes it."""
    if name == "identity":
        return np.ones_like(z)
    if name == "sigmoid":
        s = 1.0 / (1.0 + np.exp(-z))
        return s * (1 - s)
    if name == "tanh":
        return 1 - np.tanh(z) ** 2
    if name == "relu":
        return (z > 0).astype(z.dtype)
    if name == "leaky_relu":
        return np.where(z > 0, 1.0, slope).astype(z.dtype)
    raise ValueError(name)


def forward(X, W, b, name, slope=0.01):
    Z = X @ W + b
    return Z, activation(Z, name, slope)


def delta(dZ, W, Z_prev, name_prev, slope=0.01):
    return (dZ @ W.T) * derivative(Z_prev, name_prev, slope)


def weight_gradient(A_prev, dZ):
    return A_prev.T @ dZ, dZ.sum(axis=0)


def log_sigmoid(z):
    return -np.logaddexp(0, -z)


def loss_and_output_delta(loss, Z, A, Y, name, slope=0.01):
    """(mean loss, dL/dZ) of the output layer. Y: (n, m) targets, or (n,) labels for softmax CE."""
    n = Z.shape[0]
    if loss == "mse":
        value = np.mean((A - Y) ** 2)
        return value, 2 * (A - Y) / A.size * derivative(Z, name, slope)
    if loss == "half_squared_error":
        value = 0.5 * np.sum((A - Y) ** 2) / n
        return value, (A - Y) / n * derivative(Z, name, slope)
    if loss == "mae":
        return np.mean(np.abs(A - Y)), np.sign(A - Y) / A.size * derivative(Z, name, slope)
    if loss == "huber":
        r = A - Y
        value = np.mean(np.where(np.abs(r) <= 1, 0.5 * r * r, np.abs(r) - 0.5))
        return value, np.clip(r, -1, 1) / A.size * derivative(Z, name, slope)
    if loss == "binary_cross_entropy":
        value = -np.mean(Y * log_sigmoid(Z) + (1 - Y) * log_sigmoid(-Z))
        return value, (1 / (1 + np.exp(-Z)) - Y) / Z.size
    if loss == "multilabel_binary_cross_entropy":
        value = -np.sum(Y * log_sigmoid(Z) + (1 - Y) * log_sigmoid(-Z)) / n
        return value, (1 / (1 + np.exp(-Z)) - Y) / n
    if loss == "softmax_cross_entropy":
        if Y.ndim == 1:
            Y = np.eye(Z.shape[1])[Y]
        logp = Z - Z.max(axis=1, keepdims=True)
        logp = logp - np.log(np.exp(logp).sum(axis=1, keepdims=True))
        value = -np.sum(Y * logp) / n
        return value, (np.exp(logp) * Y.sum(axis=1, keepdims=True) - Y) / n
    raise ValueError(loss)


def backprop(weights, activations, X, Y, loss, slope=0.01):
    """Loss and [(dW, db), ...] of a whole network, layer by layer, in the seeds' style."""
    Zs, As = [], [X]
    for (W, b), name in zip(weights, activations):
        Z, A = forward(As[-1], W, b, name, slope)
        Zs.append(Z)
        As.append(A)
    value, dZ = loss_and_output_delta(loss, Zs[-1], As[-1], Y, activations[-1], slope)
    grads = [None] * len(weights)
    for l in range(len(weights) - 1, -1, -1):
        grads[l] = weight_gradient(As[l], dZ)
        if l:
            dZ = delta(dZ, weights[l][0], Zs[l - 1], activations[l - 1], slope)
    return value, grads, As[-1]

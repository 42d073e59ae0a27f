"""NumPy references of fastprop's kernels: the oracle the compiled code is tested against.

Written for clarity, in float64 or the inputs' dtype, with nothing shared with the C code.
"""
import numpy as np
from scipy.special import erf

GELU_K = np.sqrt(2 / np.pi)  # torch's GELU(approximate="tanh"): tanh(k (z + 0.044715 z^3))


def activation(z, name, slope=0.01, alpha=1.0):
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
    if name == "gelu":
        return 0.5 * z * (1 + erf(z / np.sqrt(2)))
    if name == "gelu_tanh":
        return 0.5 * z * (1 + np.tanh(GELU_K * (z + 0.044715 * z ** 3)))
    if name == "silu":
        return z / (1 + np.exp(-z))
    if name == "elu":
        return np.where(z > 0, z, alpha * np.expm1(np.minimum(z, 0)))
    if name == "softplus":  # torch's threshold: z itself above 20
        return np.where(z > 20, z, np.log1p(np.exp(np.minimum(z, 20))))
    if name == "mish":  # tanh(softplus(z)) is 1 in float64 long before z = 40
        return z * np.tanh(np.log1p(np.exp(np.minimum(z, 40))))
    raise ValueError(name)


def derivative(z, name, slope=0.01, alpha=1.0):
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
    if name == "gelu":  # Phi(z) + z phi(z)
        return 0.5 * (1 + erf(z / np.sqrt(2))) + z * np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi)
    if name == "gelu_tanh":
        t = np.tanh(GELU_K * (z + 0.044715 * z ** 3))
        return 0.5 * (1 + t) + 0.5 * z * (1 - t * t) * GELU_K * (1 + 3 * 0.044715 * z * z)
    if name == "silu":
        s = 1 / (1 + np.exp(-z))
        return s * (1 + z * (1 - s))
    if name == "elu":
        return np.where(z > 0, 1.0, alpha * np.exp(np.minimum(z, 0)))
    if name == "softplus":
        return np.where(z > 20, 1.0, 1 / (1 + np.exp(-z)))
    if name == "mish":  # tanh(softplus(z)) + z (1 - tanh^2) sigmoid(z)
        e = np.exp(np.minimum(z, 40))
        t = np.tanh(np.log1p(e))
        return t + z * (1 - t * t) * (e / (1 + e))
    raise ValueError(name)


def forward(X, W, b, name, slope=0.01, alpha=1.0):
    Z = X @ W + b
    return Z, activation(Z, name, slope, alpha)


def delta(dZ, W, Z_prev, name_prev, slope=0.01, alpha=1.0):
    return (dZ @ W.T) * derivative(Z_prev, name_prev, slope, alpha)


def weight_gradient(A_prev, dZ):
    return A_prev.T @ dZ, dZ.sum(axis=0)


def log_sigmoid(z):
    return -np.logaddexp(0, -z)


def loss_and_output_delta(loss, Z, A, Y, name, slope=0.01, alpha=1.0):
    """(mean loss, dL/dZ) of the output layer. Y: (n, m) targets, or (n,) labels for softmax CE."""
    n = Z.shape[0]
    derivative = lambda Z, name, slope: globals()["derivative"](Z, name, slope, alpha)
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


def backprop(weights, activations, X, Y, loss, slope=0.01, sample_weight=None, l2=0.0,
             alpha=1.0):
    """Loss and [(dW, db), ...] of a whole network, layer by layer, in the seeds' style. With
    sample_weight, each sample's loss and gradient count w_i n / sum(w) times; l2 adds
    l2 / 2 ||W||^2 / sum(w) (weights only), scikit-learn's alpha."""
    Zs, As = [], [X]
    for (W, b), name in zip(weights, activations):
        Z, A = forward(As[-1], W, b, name, slope, alpha)
        Zs.append(Z)
        As.append(A)
    value, dZ = loss_and_output_delta(loss, Zs[-1], As[-1], Y, activations[-1], slope, alpha)
    n = X.shape[0]
    w_sum = n
    if sample_weight is not None:
        w_sum = float(np.sum(sample_weight))
        wn = np.asarray(sample_weight, float) * n / w_sum
        value = sum(wn[i] * loss_and_output_delta(loss, Zs[-1][i:i + 1], As[-1][i:i + 1],
                                                  Y[i:i + 1], activations[-1], slope,
                                                  alpha)[0]
                    for i in range(n)) / n
        dZ = dZ * wn[:, None]
    value += 0.5 * l2 * sum(np.sum(W * W) for W, _ in weights) / w_sum
    grads = [None] * len(weights)
    for l in range(len(weights) - 1, -1, -1):
        dW, db = weight_gradient(As[l], dZ)
        grads[l] = (dW + l2 * weights[l][0] / w_sum, db)
        if l:
            dZ = delta(dZ, weights[l][0], Zs[l - 1], activations[l - 1], slope, alpha)
    return value, grads, As[-1]


# ---------------------------------------------------------------------------------------------
# Training, as the oracle of fit and train_step: backprop above, and torch.optim's update
# formulas written out.

def flatten(grads_or_weights):
    """[(W, b), ...] as one flat vector in fastprop's layout: W_1 row-major, b_1, W_2, ..."""
    return np.concatenate([np.concatenate([W.ravel(), b]) for W, b in grads_or_weights])


def unflatten(flat, shapes):
    """The inverse of flatten for layer shapes [(n_in, n_out), ...]."""
    out, k = [], 0
    for n_in, n_out in shapes:
        W = flat[k:k + n_in * n_out].reshape(n_in, n_out)
        k += n_in * n_out
        out.append((W, flat[k:k + n_out]))
        k += n_out
    return out


class Optimizer:
    """The formulas of the torch.optim documentation for SGD (momentum, Nesterov), Adam, AdamW
    and RMSprop, with weight decay and clipping by global norm: step(p, g) returns the new p."""

    def __init__(self, name, **hp):
        self.name, self.hp, self.t, self.s1, self.s2 = name, hp, 0, None, None

    def step(self, p, g):
        hp, name = self.hp, self.name
        self.t += 1
        t = self.t
        if self.s1 is None:
            self.s1, self.s2 = np.zeros_like(p), np.zeros_like(p)
        g = g.copy()
        if hp.get("clip_norm"):
            norm = np.sqrt(np.sum(g * g))
            g *= min(1.0, hp["clip_norm"] / (norm + 1e-6))
        wd = hp.get("weight_decay", 0.0)
        if name == "SGD":
            g = g + wd * p
            if hp.get("momentum"):
                self.s1 = hp["momentum"] * self.s1 + g if t > 1 else g
                g = g + hp["momentum"] * self.s1 if hp.get("nesterov") else self.s1
            return p - hp["lr"] * g
        if name in ("Adam", "AdamW"):
            b1, b2 = hp.get("betas", (0.9, 0.999))
            if name == "AdamW":
                p = p * (1 - hp["lr"] * wd)
            else:
                g = g + wd * p
            self.s1 = b1 * self.s1 + (1 - b1) * g
            self.s2 = b2 * self.s2 + (1 - b2) * g * g
            m_hat, v_hat = self.s1 / (1 - b1 ** t), self.s2 / (1 - b2 ** t)
            return p - hp["lr"] * m_hat / (np.sqrt(v_hat) + hp.get("eps", 1e-8))
        if name == "RMSprop":
            g = g + wd * p
            a = hp.get("alpha", 0.99)
            self.s1 = a * self.s1 + (1 - a) * g * g
            return p - hp["lr"] * g / (np.sqrt(self.s1) + hp.get("eps", 1e-8))
        raise ValueError(name)


def train(weights, activations, X, y, loss, batches, optimizer, slope=0.01, sample_weight=None,
          l2=0.0):
    """Mini-batch training in float64: for each index array in `batches`, backprop on those rows
    and one optimizer step. Returns (final weights, the loss of each batch before its step)."""
    shapes = [W.shape for W, _ in weights]
    p = flatten([(np.asarray(W, np.float64), np.asarray(b, np.float64)) for W, b in weights])
    X = np.asarray(X, np.float64)
    y = np.asarray(y)
    losses = []
    for idx in batches:
        Y = y[idx] if y.ndim == 1 and loss == "softmax_cross_entropy" else \
            np.asarray(y[idx], np.float64).reshape(len(idx), -1)
        w = None if sample_weight is None else np.asarray(sample_weight)[idx]
        value, grads, _ = backprop(unflatten(p, shapes), activations, X[idx], Y, loss, slope, w,
                                   l2)
        losses.append(value)
        p = optimizer.step(p, flatten(grads))
    return unflatten(p, shapes), losses


def epoch_batches(n, batch_size, epochs, seed=None):
    """The batches of fit: each epoch in batches of batch_size (the last one smaller); with a
    seed, fit(seed=seed)'s order: the previous epoch's order shuffled in place, epoch k by
    fastprop's counter-based generator at (seed, k). The permutations are fastprop's own random
    draws, as its dropout masks are; everything computed on them here is the oracle's."""
    from fastprop import _kernels

    order = np.arange(n, dtype=np.int64)
    out = []
    for epoch in range(epochs):
        if seed is not None:
            _kernels._shuffle(order, seed, epoch)
        out += [order[lo:lo + batch_size].copy() for lo in range(0, n, batch_size)]
    return out

"""Optimizers: each update is one fused kernel over the model's flat parameter buffer."""
from . import _kernels
from ._validation import check_positive_float


class SGD:
    """Plain stochastic gradient descent: params -= lr * grads."""

    def __init__(self, lr=0.01):
        self.lr = check_positive_float("lr", lr)

    def step(self, model):
        """Applies one update to `model` from the gradients of its last backward pass."""
        _kernels._sgd_update(model.params, model.grads, self.lr)

    def __repr__(self):
        return f"SGD(lr={self.lr})"

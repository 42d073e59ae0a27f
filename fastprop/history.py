"""The record of a training run, one entry per epoch."""


class History:
    """Per-epoch loss, accuracy (classification losses), seconds and samples per second."""

    def __init__(self):
        self.epoch = []
        self.loss = []
        self.accuracy = []
        self.seconds = []
        self.samples_per_sec = []

    def _append(self, epoch, loss, accuracy, seconds, n_samples):
        self.epoch.append(epoch)
        self.loss.append(loss)
        if accuracy is not None:
            self.accuracy.append(accuracy)
        self.seconds.append(seconds)
        self.samples_per_sec.append(n_samples / seconds if seconds > 0 else float("inf"))

    def as_dict(self):
        """The history as a dict of lists (empty lists left out)."""
        keys = ("epoch", "loss", "accuracy", "seconds", "samples_per_sec")
        return {k: list(getattr(self, k)) for k in keys if getattr(self, k)}

    def __len__(self):
        return len(self.epoch)

    def __repr__(self):
        if not self.epoch:
            return "History(epochs=0)"
        acc = f", accuracy={self.accuracy[-1]:.4f}" if self.accuracy else ""
        return f"History(epochs={len(self.epoch)}, loss={self.loss[-1]:.6g}{acc})"

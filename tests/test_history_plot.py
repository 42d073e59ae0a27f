"""History.plot: the loss and every recorded metric per epoch, validation curves dashed beside
their training curves, on the Axes given or a new one; without matplotlib, an ImportError that
says how to install it."""
import sys

import numpy as np
import pytest

import fastprop as fp


def history():
    X, y = fp.datasets.make_seed_dataset()
    model = fp.Sequential([fp.Dense(2, 4, "tanh"), fp.Dense(4, 1, "sigmoid")], seed=0)
    return model.fit(X[:80], y[:80], "binary_cross_entropy", fp.SGD(0.5), epochs=6,
                     batch_size=20, validation_data=(X[80:], y[80:]), metrics=["mae"])


def test_plot_draws_every_curve_with_its_data():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    h = history()
    fig, ax = plt.subplots()
    assert h.plot(ax) is ax
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"loss", "val_loss", "accuracy", "val_accuracy", "val_mae"}
    for name, values in h.as_dict().items():
        if name in lines:
            np.testing.assert_array_equal(lines[name].get_xdata(), h.epoch)
            np.testing.assert_allclose(lines[name].get_ydata(), values)
    assert lines["val_loss"].get_linestyle() == "--" and lines["loss"].get_linestyle() == "-"
    assert lines["val_loss"].get_color() == lines["loss"].get_color()
    assert lines["val_accuracy"].get_color() == lines["accuracy"].get_color()
    assert ax.get_xlabel() == "epoch"
    plt.close(fig)
    new = h.plot()  # no Axes given: a new figure's
    assert new is not ax and len(new.get_lines()) == 5
    plt.close(new.figure)


def test_plot_without_matplotlib_names_the_extra(monkeypatch):
    h = history()
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r'pip install "fastprop\[plot\]"'):
        h.plot()

"""model.summary(): every figure against the arrays the model and its engine really hold after a
fit at that batch size (parameters, gradients, optimizer state, snapshot, workspace), over
dropout, layers that keep Z (gelu, silu, elu, softplus), labels and targets, float32 and
float64; and the table it prints."""
import gc

import numpy as np
import pytest

import fastprop as fp

ARCHITECTURES = {
    "sigmoid": (lambda: [fp.Dense(2, 4, "sigmoid"), fp.Dense(4, 1, "sigmoid")],
                "binary_cross_entropy"),
    "dropout-softmax": (lambda: [fp.Dense(6, 16, "relu"), fp.Dropout(0.25),
                                 fp.Dense(16, 8, "tanh"), fp.Dropout(0.5),
                                 fp.Dense(8, 3, "softmax")], "softmax_cross_entropy"),
    "gelu-silu": (lambda: [fp.Dense(5, 12, "gelu"), fp.Dense(12, 7, "silu"),
                           fp.Dense(7, 2, "identity")], "mse"),
    "elu-dropout-softplus": (lambda: [fp.Dense(3, 9, "elu"), fp.Dropout(0.1),
                                      fp.Dense(9, 9, "softplus"), fp.Dense(9, 4, "sigmoid")],
                             "multilabel_binary_cross_entropy"),
}
OPTIMIZERS = {"SGD": fp.SGD, "momentum": lambda: fp.SGD(0.01, momentum=0.9), "Adam": fp.Adam}


def data(model, loss, n=50):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, model.n_in))
    if loss == "softmax_cross_entropy":
        return X, rng.integers(0, model.n_out, n)
    return X, (rng.random((n, model.n_out)) > 0.5).astype(float)


def held_bytes(engine):
    """The bytes of the workspace an engine holds: its own figure once it has one, else the
    numpy arrays it allocated (the one list among the objects it references)."""
    if hasattr(engine, "workspace_bytes"):
        return engine.workspace_bytes
    lists = [r for r in gc.get_referents(engine) if isinstance(r, list)]
    assert len(lists) == 1 and all(isinstance(a, np.ndarray) for a in lists[0]), lists
    return sum(a.nbytes for a in lists[0])


def snapshot_bytes(snapshot):
    """The bytes of the copies a snapshot keeps (the saved halves of its (live, saved) pairs)."""
    lists = [r for r in gc.get_referents(snapshot.copies) if isinstance(r, list)]
    assert len(lists) == 1
    return sum(a.nbytes for a in lists[0][1::2])


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("batch_size", [1, 7, 32])
@pytest.mark.parametrize("name", ARCHITECTURES)
def test_the_figures_are_the_bytes_a_fit_at_that_batch_size_holds(name, batch_size, optimizer,
                                                                   dtype):
    layers, loss = ARCHITECTURES[name]
    model = fp.Sequential(layers(), dtype=dtype, seed=0)
    opt = OPTIMIZERS[optimizer]()
    s = model.summary(batch_size=batch_size, optimizer=opt)
    model.fit(*data(model, loss), loss, opt, epochs=1, batch_size=batch_size)
    engine = model._engine
    assert engine.capacity == batch_size
    assert s.workspace_bytes == held_bytes(engine)
    assert s.total_params == sum(p.size for p in model.parameters()) == model.n_params
    assert s.param_bytes == sum(p.nbytes for p in model.parameters()) == model.params.nbytes
    assert s.grad_bytes == model.grads.nbytes
    state = model._optimizer_state
    assert s.optimizer_bytes == sum(b.nbytes for b in state.buffers) + state.steps.nbytes
    assert s.snapshot_bytes == snapshot_bytes(model._snapshot)
    assert s.fit_bytes == (s.param_bytes + s.grad_bytes + s.optimizer_bytes + s.snapshot_bytes
                           + s.workspace_bytes)
    # without an optimizer given: the one the model trained with, as fit would continue it
    assert model.summary(batch_size).optimizer_bytes == s.optimizer_bytes


def test_predict_and_evaluate_hold_the_workspace_of_up_to_1024_rows(dtype):
    layers, loss = ARCHITECTURES["dropout-softmax"]
    model = fp.Sequential(layers(), dtype=dtype, seed=0)
    X, y = data(model, loss, n=1500)
    model.predict(X)
    # a reading pass gathers no X rows: the workspace of a fit less that buffer
    s = model.summary(batch_size=1024)
    assert held_bytes(model._engine) == s.workspace_bytes - s.gather_bytes > 0
    model.free_workspace()
    model.evaluate(X[:300], y[:300], loss)
    s = model.summary(batch_size=300)
    assert held_bytes(model._engine) == s.workspace_bytes - s.gather_bytes
    assert s.gather_bytes == 300 * model.n_in * model.dtype.itemsize


def test_the_rows_describe_each_layer_and_dropout():
    layers, _ = ARCHITECTURES["dropout-softmax"]
    s = fp.Sequential(layers(), seed=0).summary()
    assert [tuple(r) for r in s.layers] == [
        ("Dense", "relu", (None, 16), 6 * 16 + 16, 0.0),
        ("Dropout", None, (None, 16), 0, 0.25),
        ("Dense", "tanh", (None, 8), 16 * 8 + 8, 0.0),
        ("Dropout", None, (None, 8), 0, 0.5),
        ("Dense", "softmax", (None, 3), 8 * 3 + 3, 0.0)]
    assert isinstance(s.layers[0], fp.SummaryRow)
    assert s.total_params == 112 + 136 + 27 and s.dtype == "float32" and s.batch_size == 32
    assert s.optimizer == "SGD"  # what fit takes for a model that has not trained


def test_it_shows_itself_as_a_table():
    model = fp.Sequential([fp.Dense(2, 4, "gelu"), fp.Dropout(0.5), fp.Dense(4, 1, "sigmoid")],
                          dtype="float64", seed=0)
    s = model.summary(batch_size=10, optimizer=fp.Adam())
    text = str(s)
    assert repr(s) == text
    lines = text.split("\n")
    assert lines[0].split() == ["layer", "kind", "activation", "output", "shape", "params"]
    assert lines[2].split() == ["1", "Dense", "gelu", "(None,", "4)", "12"]
    assert lines[3].split() == ["Dropout(0.5)", "(None,", "4)", "0"]
    assert lines[4].split() == ["2", "Dense", "sigmoid", "(None,", "1)", "5"]
    assert lines[5] == "17 parameters: 136 B of float64"
    assert lines[6].startswith("a fit at batch_size=10 with Adam holds ")
    assert [l.split()[0] for l in lines[7:]] == ["parameters", "gradients", "optimizer",
                                                "snapshot", "workspace"]
    assert f"{s.workspace_bytes} B" in lines[-1] or "KiB" in lines[-1]
    html = s._repr_html_()
    assert html.startswith("<pre>") and html.endswith("</pre>") and "&lt;" not in text


def test_bad_arguments_are_refused():
    model = fp.Sequential([fp.Dense(2, 1)])
    with pytest.raises(ValueError, match="batch_size: expected a positive integer"):
        model.summary(batch_size=0)
    with pytest.raises(TypeError, match="optimizer: expected a fastprop optimizer"):
        model.summary(optimizer="adam")

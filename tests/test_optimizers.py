"""Optimizers against their update formulas written out in NumPy, and against torch.optim step
for step; fit and train_step against the NumPy oracle (backprop and those formulas) for each."""
import numpy as np
import pytest

import fastprop as fp
import reference as ref


def model_with(params, dtype="float64"):
    m = fp.Sequential([fp.Dense(3, 2)], dtype=dtype)
    m.params[...] = params
    return m


def numpy_reference(name, hp, p, grads):
    """The formulas of the torch.optim documentation, one step per gradient in `grads`."""
    opt = ref.Optimizer(name, **hp)
    for g in grads:
        p = opt.step(p, g)
    return p


CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, weight_decay=0.01)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.001)),
    ("SGD", dict(lr=0.1, momentum=0.9, clip_norm=0.5)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1, clip_norm=0.3)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, weight_decay=0.01)),
]


@pytest.mark.parametrize("name,hp", CASES)
def test_update_formulas(name, hp):
    rng = np.random.default_rng(0)
    p0 = rng.normal(size=8)
    grads = [rng.normal(size=8) for _ in range(6)]
    model = model_with(p0)
    opt = getattr(fp, name)(**hp)
    for g in grads:
        model.grads[...] = g
        opt.step(model)
    assert opt.t == 6
    np.testing.assert_allclose(model.params, numpy_reference(name, hp, p0, grads), rtol=1e-12,
                               atol=1e-14)


@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_in_scikit_learns_velocity_form_carries_earlier_rates(nesterov):
    # scikit-learn's SGDOptimizer: v = mu v - lr g; p += v (Nesterov: p += mu v - lr g), with
    # the rate changing between steps; torch's form scales the whole buffer by the current rate
    rng = np.random.default_rng(1)
    p0, grads, rates = rng.normal(size=8), [rng.normal(size=8) for _ in range(5)], \
        [0.1, 0.05, 0.02, 0.2, 0.01]
    model = model_with(p0)
    opt = fp.SGD(lr=0.1, momentum=0.9, nesterov=nesterov)
    opt._lr_in_velocity = True
    p, v = p0.copy(), np.zeros(8)
    for g, lr in zip(grads, rates):
        model.grads[...] = g
        opt.lr = lr
        opt.step(model)
        v = 0.9 * v - lr * g
        p += 0.9 * v - lr * g if nesterov else v
    np.testing.assert_allclose(model.params, p, rtol=1e-14, atol=1e-15)
    torch_form = model_with(p0)
    opt = fp.SGD(lr=0.1, momentum=0.9, nesterov=nesterov)
    for g, lr in zip(grads, rates):
        torch_form.grads[...] = g
        opt.lr = lr
        opt.step(torch_form)
    assert np.abs(torch_form.params - p).max() > 1e-3  # the forms differ when lr changes


def test_clipping_scales_the_gradients_in_place():
    model = model_with(np.zeros(8))
    model.grads[...] = 3.0  # norm sqrt(72)
    fp.SGD(lr=1.0, clip_norm=1.0).step(model)
    np.testing.assert_allclose(np.linalg.norm(model.grads), 1.0, rtol=1e-6)
    np.testing.assert_allclose(model.params, -model.grads, rtol=1e-12)


def problem(dtype, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(40, 5))
    y = rng.integers(0, 3, size=40)
    model = fp.Sequential([fp.Dense(5, 8, "tanh"), fp.Dense(8, 3, "softmax")], dtype=dtype, seed=seed)
    return model, X, y


@pytest.mark.parametrize("name,hp", CASES)
@pytest.mark.parametrize("path", ["fit", "train_step"])
def test_training_matches_the_numpy_oracle(dtype, name, hp, path):
    model, X, y = problem(dtype)
    opt = getattr(fp, name)(**hp)
    batches = ref.epoch_batches(40, 10, 3)
    expected, losses = ref.train(model.get_weights(), ["tanh", "softmax"], X, y,
                                 "softmax_cross_entropy", batches, ref.Optimizer(name, **hp))
    if path == "fit":
        h = model.fit(X, y, "softmax_cross_entropy", opt, epochs=3, batch_size=10, shuffle=False)
        got = h.loss
        losses = [np.mean(losses[e * 4:(e + 1) * 4]) for e in range(3)]
    else:
        got = [model.train_step(X[idx], y[idx], "softmax_cross_entropy", opt) for idx in batches]
    assert opt.t == 12
    tol = dict(rtol=2e-4, atol=2e-6) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(model.params, ref.flatten(expected), **tol)
    np.testing.assert_allclose(got, losses, **tol)


@pytest.mark.parametrize("name,hp", CASES)
@pytest.mark.parametrize("path", ["train_step", "fit"])
def test_against_torch_optim(dtype, name, hp, path):
    torch = pytest.importorskip("torch")
    model, X, y = problem(dtype, seed=1)
    tdtype = torch.float32 if dtype == np.float32 else torch.float64
    lin = [torch.nn.Linear(l.n_in, l.n_out).to(tdtype) for l in model.layers]
    with torch.no_grad():
        for l, t in zip(model.layers, lin):
            t.weight.copy_(torch.from_numpy(l.W.T.copy()))
            t.bias.copy_(torch.from_numpy(l.b.copy()))
    net = torch.nn.Sequential(lin[0], torch.nn.Tanh(), lin[1])
    thp = {k: v for k, v in hp.items() if k != "clip_norm"}
    opt_t = getattr(torch.optim, name)(net.parameters(), **thp)
    opt_f = getattr(fp, name)(**hp)
    Xt, yt = torch.from_numpy(X).to(tdtype), torch.from_numpy(y)
    for step in range(20):
        lo = (step * 8) % 40
        opt_t.zero_grad()
        torch.nn.functional.cross_entropy(net(Xt[lo:lo + 8]), yt[lo:lo + 8]).backward()
        if hp.get("clip_norm"):
            torch.nn.utils.clip_grad_norm_(net.parameters(), hp["clip_norm"])
        opt_t.step()
        if path == "train_step":
            model.train_step(X[lo:lo + 8], y[lo:lo + 8], "softmax_cross_entropy", opt_f)
    if path == "fit":  # 20 steps of 8 = 4 epochs over 40 samples in order
        model.fit(X, y, "softmax_cross_entropy", opt_f, epochs=4, batch_size=8, shuffle=False)
    tol = dict(rtol=5e-4, atol=5e-6) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-12)
    for l, t in zip(model.layers, lin):
        np.testing.assert_allclose(l.W, t.weight.detach().numpy().T, **tol)
        np.testing.assert_allclose(l.b, t.bias.detach().numpy(), **tol)


def test_state_persists_across_fits_and_resets_for_another_model():
    model, X, y = problem("float64")
    opt = fp.Adam(lr=0.01)
    model.fit(X, y, "softmax_cross_entropy", opt, epochs=1, batch_size=10)
    assert opt.t == 4
    model.fit(X, y, "softmax_cross_entropy", opt, epochs=1, batch_size=10)
    assert opt.t == 8  # the moments and the step count carry on
    other = fp.Sequential([fp.Dense(5, 3, "softmax")], dtype="float64")
    other.fit(X, y, "softmax_cross_entropy", opt, epochs=1, batch_size=10)
    assert opt.t == 4  # a model of another size starts from fresh state


@pytest.mark.parametrize("make,match", [
    (lambda: fp.SGD(lr=0.1, momentum=1.5), "momentum: expected a number in"),
    (lambda: fp.SGD(lr=0.1, nesterov=True), "nesterov: needs a momentum > 0"),
    (lambda: fp.Adam(betas=(0.9,)), "betas: expected a pair"),
    (lambda: fp.Adam(betas=(0.9, 1.0)), r"betas\[1\]: expected a number in"),
    (lambda: fp.Adam(eps=0), "eps: expected a positive finite number"),
    (lambda: fp.AdamW(weight_decay=-1), "weight_decay: expected a finite number >= 0"),
    (lambda: fp.RMSprop(clip_norm=0), "clip_norm: expected a positive finite number"),
])
def test_bad_hyperparameters(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_reprs():
    assert repr(fp.SGD(0.1, momentum=0.9, nesterov=True)) == "SGD(lr=0.1, momentum=0.9, nesterov=True)"
    assert repr(fp.AdamW()) == "AdamW(lr=0.001, weight_decay=0.01, betas=(0.9, 0.999), eps=1e-08)"
    assert repr(fp.RMSprop(clip_norm=1)) == "RMSprop(lr=0.01, clip_norm=1.0, alpha=0.99, eps=1e-08)"

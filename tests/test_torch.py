"""fastprop against PyTorch: forward values, loss, every gradient and the weights after several
SGD steps, on random architectures in float32 and float64. Skipped when torch is missing."""
import numpy as np
import pytest

import fastprop as fp

torch = pytest.importorskip("torch")

from fastprop.torch_interop import activation_module  # noqa: E402

# every element-wise activation, each as the torch.nn module its row names
TORCH_ACT = [name for name in fp.activations.TABLE if name != "softmax"]


def torch_loss(loss):
    return {"mse": torch.nn.MSELoss(), "binary_cross_entropy": torch.nn.BCEWithLogitsLoss(),
            "softmax_cross_entropy": torch.nn.CrossEntropyLoss()}[loss]


def random_case(seed, dtype):
    rng = np.random.default_rng(seed)
    depth = int(rng.integers(1, 5))
    sizes = [int(s) for s in rng.integers(1, 24, size=depth + 1)]
    hidden = [str(rng.choice(TORCH_ACT)) for _ in range(depth - 1)]
    loss = ["mse", "binary_cross_entropy", "softmax_cross_entropy"][seed % 3]
    if loss == "softmax_cross_entropy":
        sizes[-1] = max(sizes[-1], 2)
    out_act = {"mse": str(rng.choice(TORCH_ACT)), "binary_cross_entropy": "sigmoid",
               "softmax_cross_entropy": "softmax"}[loss]
    acts = hidden + [out_act]
    layers = [fp.Dense(sizes[i], sizes[i + 1], acts[i]) for i in range(depth)]
    model = fp.Sequential(layers, dtype=dtype, seed=seed)
    n = int(rng.integers(1, 40))
    X = rng.normal(size=(n, sizes[0]))
    if loss == "mse":
        y = rng.normal(size=(n, sizes[-1]))
    elif loss == "binary_cross_entropy":
        y = (rng.random((n, sizes[-1])) > 0.5).astype(float)
    else:
        y = rng.integers(0, sizes[-1], size=n)
    return model, X, y, loss


def torch_twin(model, tdtype, loss):
    mods = []
    for l in model.layers:
        lin = torch.nn.Linear(l.n_in, l.n_out).to(tdtype)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(l.W.T.copy()))   # torch stores W as (n_out, n_in)
            lin.bias.copy_(torch.from_numpy(l.b.copy()))
        mods.append(lin)
        # the fused outputs (sigmoid with BCE, softmax with CE) stay logits in torch
        if l is not model.layers[-1] or loss not in ("binary_cross_entropy", "softmax_cross_entropy"):
            mods.append(activation_module(l))
    return torch.nn.Sequential(*mods)


@pytest.mark.parametrize("seed", range(24))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_against_torch(seed, dtype):
    model, X, y, loss = random_case(seed, dtype)
    tdtype = torch.float32 if dtype == "float32" else torch.float64
    tol = dict(rtol=2e-4, atol=2e-5) if dtype == "float32" else dict(rtol=1e-10, atol=1e-12)
    net = torch_twin(model, tdtype, loss)
    Xt = torch.from_numpy(X).to(tdtype)
    yt = torch.from_numpy(y).long() if loss == "softmax_cross_entropy" else torch.from_numpy(y).to(tdtype)
    crit = torch_loss(loss)

    # forward values
    out = net(Xt)
    if loss == "binary_cross_entropy":
        out = torch.sigmoid(out)
    if model.layers[-1].activation == "softmax":
        out = torch.softmax(out, dim=1)
    np.testing.assert_allclose(model.predict(X), out.detach().numpy(), **tol)

    # loss and every gradient
    value, grads = model.loss_and_gradients(X, y, loss)
    net.zero_grad()
    tl = crit(net(Xt), yt)
    tl.backward()
    np.testing.assert_allclose(value, tl.item(), **tol)
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    for (dW, db), lin in zip(grads, linears):
        np.testing.assert_allclose(dW, lin.weight.grad.numpy().T, **tol)
        np.testing.assert_allclose(db, lin.bias.grad.numpy(), **tol)

    # weights after several SGD steps on mini-batches
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    sgd = fp.SGD(lr=0.05)
    for step in range(5):
        rows = slice((step * 7) % len(X), (step * 7) % len(X) + 8)
        model.train_step(X[rows], y[rows], loss, sgd)
        opt.zero_grad()
        crit(net(Xt[rows]), yt[rows]).backward()
        opt.step()
    for l, lin in zip(model.layers, linears):
        np.testing.assert_allclose(l.W, lin.weight.detach().numpy().T, **tol)
        np.testing.assert_allclose(l.b, lin.bias.detach().numpy(), **tol)


def test_half_squared_error_against_torch():
    # L = 1/2 sum_j (a - y)^2, mean over samples: torch's MSELoss(reduction='sum') / (2 n)
    model, X, _, _ = random_case(0, "float64")
    y = np.random.default_rng(0).normal(size=(len(X), model.n_out))
    model2 = fp.Sequential([fp.Dense(l.n_in, l.n_out, l.activation) for l in model.layers],
                           dtype="float64")
    model2.params[...] = model.params
    value, grads = model2.loss_and_gradients(X, y, "half_squared_error")
    net = torch_twin(model2, torch.float64, "half_squared_error")
    t = torch.nn.MSELoss(reduction="sum")(net(torch.from_numpy(X)), torch.from_numpy(y)) / (2 * len(X))
    t.backward()
    np.testing.assert_allclose(value, t.item(), rtol=1e-12)
    lin = [m for m in net if isinstance(m, torch.nn.Linear)][0]
    np.testing.assert_allclose(grads[0][0], lin.weight.grad.numpy().T, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("loss,out_act,make_crit", [
    ("mae", "identity", lambda: torch.nn.L1Loss()),
    ("huber", "tanh", lambda: torch.nn.HuberLoss(delta=1.0)),
    ("multilabel_binary_cross_entropy", "sigmoid",
     lambda: (lambda out, y: torch.nn.BCEWithLogitsLoss(reduction="sum")(out, y) / len(y))),
])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_more_losses_against_torch(loss, out_act, make_crit, dtype):
    rng = np.random.default_rng(0)
    model = fp.Sequential([fp.Dense(6, 9, "relu"), fp.Dense(9, 4, out_act)], dtype=dtype, seed=2)
    X = rng.normal(size=(30, 6))
    y = ((rng.random((30, 4)) > 0.5) * 1.0 if "binary" in loss else rng.normal(scale=2, size=(30, 4)))
    tdtype = torch.float32 if dtype == "float32" else torch.float64
    tol = dict(rtol=2e-4, atol=2e-5) if dtype == "float32" else dict(rtol=1e-10, atol=1e-12)
    net = torch_twin(model, tdtype, "binary_cross_entropy" if "binary" in loss else "mse")
    value, grads = model.loss_and_gradients(X, y, loss)
    t = make_crit()(net(torch.from_numpy(X).to(tdtype)), torch.from_numpy(y).to(tdtype))
    t.backward()
    np.testing.assert_allclose(value, t.item(), **tol)
    lin = [m for m in net if isinstance(m, torch.nn.Linear)]
    for (dW, db), l in zip(grads, lin):
        np.testing.assert_allclose(dW, l.weight.grad.numpy().T, **tol)
        np.testing.assert_allclose(db, l.bias.grad.numpy(), **tol)

"""The four-layer scalar network of the seed document on the chain rule (section 10).

x = 2; W = 1, 2, 1, 1; biases 0; activations identity, identity, tanh, identity;
L = 1/2 (z - y)^2 with y = 10. Prints fastprop's backward pass and where the seed's rounding differs.
"""
import numpy as np

import fastprop as fp

model = fp.Sequential([fp.Dense(1, 1, "identity"), fp.Dense(1, 1, "identity"),
                       fp.Dense(1, 1, "tanh"), fp.Dense(1, 1, "identity")], dtype="float64")
model.set_weights([([[w]], [0.0]) for w in (1.0, 2.0, 1.0, 1.0)])
X, y = [[2.0]], [[10.0]]

trace = model.explain(X, y, loss="half_squared_error")
print(trace)
print()

seed = {  # what the seed document prints
    "loss": (40.02, trace.loss),
    "f'(u3) = 1 - tanh(4)^2": (0.0014, trace[2].fprime[0, 0]),
    "delta3": (-0.0126, trace[2].delta[0, 0]),
    "dL/dW3": (-0.0504, trace[2].dW[0, 0]),
    "dL/dW4": (-8.994, trace[3].dW[0, 0]),
    "dL/db4": (-9.0007, trace[3].db[0]),
}
print(f"{'quantity':<24}{'seed':>10}{'fastprop':>14}  note")
for name, (printed, exact) in seed.items():
    note = ""
    if name == "loss":
        note = "the seed's arithmetic slip: 1/2 (0.99933 - 10)^2 = 40.506"
    elif name.startswith("f'"):
        note = "the seed rounds 0.00134 to 0.0014 ..."
    elif name in ("delta3", "dL/dW3"):
        note = "... and carries that rounding into this value"
    print(f"{name:<24}{printed:>10}{exact:>14.6g}  {note}")

W4_before = model.layers[3].W[0, 0]
model.train_step(X, y, "half_squared_error", fp.SGD(lr=0.1))
print(f"\nW4 after one SGD step (lr 0.1): {W4_before} -> {model.layers[3].W[0, 0]:.6f} "
      f"(seed: 1.8994)")

"""Run by tests/test_interrupts.py in a child process (a SIGINT sent to the test runner itself
would stop the whole run): each case starts a long call, sends this process SIGINT 0.3 s in,
and prints one JSON line: how long KeyboardInterrupt took to arrive, and whether the model is
whole, i.e. equal, bit for bit, to a twin that trained exactly the steps the interrupted one
kept."""
import json
import os
import signal
import sys
import threading
import time
import warnings

import numpy as np

import fastprop as fp

rng = np.random.default_rng(0)
X = rng.normal(size=(4096, 128)).astype(np.float32)
Y = rng.normal(size=(4096, 8)).astype(np.float32)


def model():
    return fp.Sequential([fp.Dense(128, 256, "tanh"), fp.Dense(256, 256, "relu"),
                          fp.Dropout(0.1), fp.Dense(256, 8)], seed=0)


def interrupt_after(seconds):
    sent = []

    def fire():
        time.sleep(seconds)
        sent.append(time.perf_counter())
        os.kill(os.getpid(), signal.SIGINT)
    threading.Thread(target=fire, daemon=True).start()
    return sent


def timed(call, after=0.3):
    """(seconds from the signal to KeyboardInterrupt, the exception) of a call that must be
    interrupted; raises if it finished first."""
    sent = interrupt_after(after)
    try:
        call()
    except KeyboardInterrupt as exc:
        return time.perf_counter() - sent[0], exc
    raise AssertionError("the call ended before the signal")


def same(a, b):
    """The same training state (the gradients aside: every step computes them anew)."""
    return all(np.array_equal(x, y) for (name, x), (_, y) in zip(a._state(), b._state())
               if name != "grads")


def fit_case(callbacks, X=X):
    start = time.perf_counter()  # an epoch's time here (a sanitizer build is slower): the signal
    model().fit(X, Y, "mse", fp.Adam(1e-4), epochs=1, batch_size=32, n_threads=1)  # comes after
    after = max(0.3, 2.5 * (time.perf_counter() - start))
    m, opt = model(), fp.Adam(1e-4)
    delay, exc = timed(lambda: m.fit(X, Y, "mse", opt, epochs=10**6, batch_size=32,
                                     callbacks=callbacks, n_threads=1), after)
    done = len(exc.history.epoch)
    twin, twin_opt = model(), fp.Adam(1e-4)
    if done:
        twin.fit(X, Y, "mse", twin_opt, epochs=done, batch_size=32, n_threads=1)
    whole = same(m, twin) and opt.t == twin_opt.t == done * 128
    return {"delay": delay, "whole": bool(whole), "epochs": done, "steps": opt.t}


def reading_case(name):
    m = model()
    big = np.tile(X, (64, 1))
    before = [arr.copy() for _, arr in m._state() if _ != "grads"]
    calls = {"predict": lambda: m.predict(big),
             "evaluate": lambda: m.evaluate(big, np.tile(Y, (64, 1)), "mse"),
             "loss_and_gradients": lambda: m.loss_and_gradients(big, np.tile(Y, (64, 1)), "mse"),
             "explain": lambda: m.explain(big[:40000], np.tile(Y, (64, 1))[:40000], "mse")}
    delay, _ = timed(calls[name], 0.05 if name == "explain" else 0.3)
    after = [arr for _, arr in m._state() if _ != "grads"]
    return {"delay": delay, "whole": all(np.array_equal(a, b) for a, b in zip(before, after))}


def estimator_case():
    from fastprop.sklearn import MLPRegressor
    settings = dict(hidden_layer_sizes=(256, 256), solver="sgd", max_iter=500,
                    random_state=0, tol=0, n_iter_no_change=10**6, n_threads=1)
    est = MLPRegressor(**settings)
    sent = interrupt_after(0.3)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        est.fit(X, Y)
    delay = time.perf_counter() - sent[0]
    warned = any("Training interrupted by user." in str(w.message) for w in seen)
    twin = MLPRegressor(**dict(settings, max_iter=est.n_iter_))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        twin.fit(X, Y)
    whole = est.n_iter_ == len(est.loss_curve_) and est.t_ == est.n_iter_ * len(X) and all(
        np.array_equal(a, b) for a, b in zip(est.coefs_ + est.intercepts_,
                                             twin.coefs_ + twin.intercepts_))
    return {"delay": delay, "whole": bool(whole and warned), "epochs": est.n_iter_}


if __name__ == "__main__":
    case = sys.argv[1]
    if case == "fit":
        result = fit_case(None)
    elif case == "fit_callbacks":
        result = fit_case([fp.Callback()])
    elif case == "fit_sparse":  # CSR rows, read in place by the same compiled epochs
        import scipy.sparse
        result = fit_case(None, scipy.sparse.csr_matrix(X * (np.abs(X) > 1.0)))
    elif case == "estimator":
        result = estimator_case()
    else:
        result = reading_case(case)
    print(json.dumps(result))

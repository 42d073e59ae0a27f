"""The API as users' tools see it: mypy over fastprop/ with pyproject's settings (every function
annotated), the stubs of the compiled modules against the modules themselves (mypy's stubtest),
fit's options written once, the Literal names against the tables they name, py.typed and the
stubs shipped, and annotations that cost nothing at run time."""
import ast
import functools
import inspect
import os
import subprocess
import sys
import typing

import pytest

import fastprop as fp
from fastprop import training

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "fastprop")


@functools.lru_cache(maxsize=None)
def checks(tmp):
    """mypy and stubtest, started together (each builds numpy's stubs: about 15 s apiece) and
    waited for; {name: CompletedProcess-like (returncode, output)}."""
    pytest.importorskip("mypy")
    version = pytest.importorskip("mypy.version").__version__
    if tuple(int(v) for v in version.split("+")[0].split(".")[:2]) < (1, 18):
        pytest.skip(f"mypy {version}: the stubs' @disjoint_base needs mypy 1.18")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.dirname(os.path.dirname(fp.__file__))] +
        [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    commands = {
        "mypy": ([sys.executable, "-m", "mypy", "--config-file", "pyproject.toml",
                  "--cache-dir", os.path.join(tmp, "mypy-cache"), "--no-pretty"], ROOT),
        # in a directory of its own: the modules compared are those `import fastprop` finds
        "stubtest": ([sys.executable, "-m", "mypy.stubtest", "fastprop._kernels",
                      "fastprop._engine", "--mypy-config-file",
                      os.path.join(ROOT, "pyproject.toml"), "--allowlist",
                      os.path.join(ROOT, "tests", "stubtest_allowlist.txt")], tmp),
    }
    running = {name: subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True)
               for name, (argv, cwd) in commands.items()}
    return {name: (p.wait(timeout=600), p.stdout.read()) for name, p in running.items()}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return checks(str(tmp_path_factory.mktemp("typing")))


def test_mypy_finds_every_function_annotated_and_consistent(results):
    code, output = results["mypy"]
    assert code == 0, f"mypy over fastprop/ (python -m mypy, from the repository):\n{output}"


def test_the_stubs_of_the_compiled_modules_match_them(results):
    code, output = results["stubtest"]
    assert code == 0, f"python -m mypy.stubtest fastprop._kernels fastprop._engine:\n{output}"


def test_the_settings_ask_for_every_function_to_be_annotated():
    try:
        import tomllib  # Python 3.11
    except ImportError:
        tomllib = pytest.importorskip("tomli")
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        config = tomllib.load(f)
    mypy = config["tool"]["mypy"]
    assert mypy["files"] == ["fastprop"]
    for flag in ("disallow_untyped_defs", "disallow_incomplete_defs", "check_untyped_defs"):
        assert mypy[flag] is True, flag
    for override in mypy.get("overrides", []):  # none loosens them for a fastprop module
        if any(m.startswith("fastprop") for m in override["module"]):
            assert set(override) <= {"module", "disallow_untyped_decorators"}, override
    assert any(r.startswith("mypy") for r in config["project"]["optional-dependencies"]["test"])
    data = config["tool"]["setuptools"]["package-data"]["fastprop"]
    assert "py.typed" in data and "*.pyi" in data
    for name in ("py.typed", "_engine.pyi", "_kernels.pyi"):
        assert os.path.isfile(os.path.join(PACKAGE, name)), name


# --------------------------------------------------------------------------------------------
# fit's options, written once

def options(function, drop=()):
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()
            if p.name not in drop]


def test_the_model_methods_are_the_training_functions_with_every_option_spelled_out():
    assert fp.Sequential.fit is training.fit
    assert fp.Sequential.partial_fit is training.partial_fit
    params = inspect.signature(fp.Sequential.fit).parameters
    for name in ("validation_data", "callbacks", "n_threads", "sample_weight", "comm", "seed",
                 "metrics", "lr_schedule", "l2_penalty", "warm_start", "verbose"):
        assert params[name].kind is inspect.Parameter.KEYWORD_ONLY, name
    assert not any(p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) for p in params.values())
    bound = inspect.signature(fp.Sequential([fp.Dense(2, 1)]).fit).parameters
    assert list(bound)[:4] == ["X", "y", "loss", "optimizer"]


def test_partial_fit_takes_fits_options_with_fits_defaults():
    assert options(training.partial_fit) == options(training.fit, drop=("epochs",))


def test_every_option_reaches_the_plan_in_fits_order():
    # fit hands its options to _checked as one tuple, by position: the two lists must agree
    assert [n for n, _, _ in options(training._checked)] == \
        [n for n, _, _ in options(training.fit, drop=("n_threads", "comm"))]


# --------------------------------------------------------------------------------------------
# The names, against their tables

def test_the_literal_names_are_the_tables_names_and_aliases():
    from fastprop import _typing, activations, layers, losses
    assert set(typing.get_args(_typing.ActivationName)) == \
        set(activations.ACTIVATIONS) | set(activations._ALIASES)
    assert set(typing.get_args(_typing.LossName)) == set(losses.LOSSES) | set(losses._ALIASES)
    assert typing.get_args(_typing.InitName) == layers.INITIALIZERS


def test_the_stubs_name_every_fixed_code_and_leave_the_tables_to_the_tables():
    """The stubs list the codes of fastprop.h's fixed enums; the activation and loss codes are
    read from the C tables at import (an activation or a loss added there needs no stub line),
    and every one of them is named by exactly one Python row."""
    from fastprop import _kernels, activations, losses
    tree = ast.parse(open(os.path.join(PACKAGE, "_kernels.pyi")).read())
    enums = {node.name: [t.targets[0].id for t in node.body if isinstance(t, ast.Assign)]
             for node in tree.body if isinstance(node, ast.ClassDef)}
    for name in ("fp_optimizer_kind", "fp_status", "fp_dtype"):
        assert enums[name] == [m.name for m in getattr(_kernels, name)], name
    for name, table in (("fp_activation", activations.TABLE), ("fp_loss", losses.TABLE)):
        assert enums[name] == [], name
        members = list(getattr(_kernels, name))
        assert sorted(row.code for row in table.values()) == sorted(members) and \
            len(members) == _kernels.N_CODES[name[3:]] > 0, name


# --------------------------------------------------------------------------------------------
# Nothing at run time

def test_every_module_defers_its_annotations():
    # annotations stay strings (Python 3.9 reads `X | None` in them), evaluated by no one
    for name in sorted(os.listdir(PACKAGE)):
        if name.endswith(".py"):
            tree = ast.parse(open(os.path.join(PACKAGE, name)).read())
            body = tree.body[1:] if ast.get_docstring(tree) is not None else tree.body
            first = body[0] if body else None
            assert isinstance(first, ast.ImportFrom) and first.module == "__future__" and \
                [a.name for a in first.names] == ["annotations"], name


def test_the_types_module_is_never_imported_to_run():
    code = ("import sys, fastprop, fastprop.distributed, fastprop.onnx, fastprop.torch_interop;"
            "print('fastprop._typing' in sys.modules)")
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(fp.__file__)))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, cwd=os.path.dirname(ROOT))
    assert done.stdout.strip() == "False", done.stdout + done.stderr

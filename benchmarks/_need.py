"""The benchmarks' import guard: a script that needs a package which is not installed stops with
one line naming the extra that installs it (exit status 1), not with a traceback."""
import importlib.util
import os
import sys


def need(extra, *modules):
    """Exits unless every one of `modules` can be imported, naming `pip install ".[extra]"`."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        sys.exit(f"{os.path.basename(sys.argv[0])} needs {' and '.join(missing)}: "
                 f'pip install ".[{extra}]" (from the repository\'s root)')

"""docs/api.md is what `python -m fastprop._apidoc` writes from the code: a public name added,
renamed, re-signed or redocumented fails here until the page is written again."""
import difflib
import importlib
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGE = os.path.join(ROOT, "docs", "api.md")


def test_the_api_reference_is_up_to_date():
    pytest.importorskip("sklearn")  # fastprop.sklearn's estimators are on the page
    from fastprop import _apidoc
    with open(PAGE, encoding="utf-8") as f:
        page = f.read()
    written = _apidoc.render()
    diff = "".join(list(difflib.unified_diff(page.splitlines(True), written.splitlines(True),
                                             "docs/api.md", "the code", n=1))[:60])
    assert page == written, (f"docs/api.md is out of date: run `{_apidoc.COMMAND}` from the "
                             f"repository's root. The difference:\n{diff}")


def test_every_module_that_names_its_public_api_is_on_the_page():
    # a module with an __all__ is public: the page must list it (the others' public names are
    # fastprop's own, or the package's machinery)
    from fastprop import _apidoc
    named = set()
    for name in sorted(os.listdir(os.path.join(ROOT, "fastprop"))):
        if name.endswith(".py") and not name.startswith("_"):
            module = f"fastprop.{name[:-3]}"
            if module == "fastprop.sklearn":
                pytest.importorskip("sklearn")
            if hasattr(importlib.import_module(module), "__all__"):
                named.add(module)
    assert named == set(_apidoc.MODULES) - {"fastprop"}

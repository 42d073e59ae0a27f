"""The build's configuration: pyproject.toml as setuptools reads it, with every warning an error
(a deprecated form today is a failed build tomorrow), and the license it declares and ships.

A full build compiles the extensions (minutes), so this checks what setuptools makes of
pyproject.toml, the step where its deprecations are raised, and the metadata it would write."""
import io
import os
import re
import warnings

import pytest

setuptools = pytest.importorskip("setuptools", minversion="77",
                                 reason="SPDX license expressions need setuptools >= 77")
from setuptools.config import pyprojecttoml  # noqa: E402
from setuptools.dist import Distribution  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYPROJECT = os.path.join(ROOT, "pyproject.toml")


def test_pyproject_is_read_without_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        config = pyprojecttoml.read_configuration(PYPROJECT)
        dist = pyprojecttoml.apply_configuration(Distribution(), PYPROJECT)
    assert config["project"]["license"] == "BSD-3-Clause"
    assert dist.metadata.license_expression == "BSD-3-Clause"
    assert dist.metadata.license_files == ["LICENSE"]
    # the SPDX string needs setuptools 77, so the build asks for it
    requires = config["build-system"]["requires"]
    setuptools_pin = [r for r in requires if re.match(r"setuptools\b", r)]
    assert setuptools_pin == ["setuptools>=77"], requires


def test_the_metadata_declares_and_ships_the_license():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dist = pyprojecttoml.apply_configuration(Distribution(), PYPROJECT)
        out = io.StringIO()
        dist.metadata.write_pkg_file(out)
    pkg_info = out.getvalue()
    assert "License-Expression: BSD-3-Clause" in pkg_info, pkg_info[:600]
    assert "License-File: LICENSE" in pkg_info, pkg_info[:600]
    assert not re.search(r"^License: ", pkg_info, re.M)  # the deprecated free-text field
    with open(os.path.join(ROOT, "LICENSE"), encoding="utf-8") as f:
        text = f.read()
    assert text.startswith("BSD 3-Clause License") and "fastprop developers" in text
    assert "Neither the name of the copyright holder" in text  # the third clause

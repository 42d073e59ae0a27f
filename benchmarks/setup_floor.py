"""Builds benchmarks/gemm_floor.pyx into benchmarks/build/ (compare.py calls it on first use;
Cython and setuptools come with pip install ".[bench]")."""
import os
import sys

from _need import need

need("bench", "Cython", "setuptools")

import numpy  # noqa: E402
from Cython.Build import cythonize  # noqa: E402
from setuptools import Extension, setup  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    build = os.path.join(HERE, "build")
    sys.argv = [sys.argv[0], "build_ext", "--build-lib", build, "--build-temp",
                os.path.join(build, "tmp")]
    setup(name="fastprop-gemm-floor", script_args=sys.argv[1:],
          ext_modules=cythonize([Extension("gemm_floor", [os.path.join(HERE, "gemm_floor.pyx")],
                                           include_dirs=[numpy.get_include()],
                                           extra_compile_args=["-O3"])],
                                build_dir=os.path.join(build, "tmp"), quiet=True))


if __name__ == "__main__":
    main()

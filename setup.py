"""Builds fastprop's extension modules from fastprop/*.pyx and csrc/*.c."""
import os
import sys
import tempfile
import glob

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


def _compiler_has_openmp(compiler):
    """True if the compiler builds and links a program with -fopenmp."""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "omp.c")
        with open(src, "w") as f:
            f.write("#include <omp.h>\nint main(void) { return omp_get_max_threads() < 1; }\n")
        try:
            objs = compiler.compile([src], output_dir=tmp, extra_postargs=["-fopenmp"])
            compiler.link_executable(objs, "omp", output_dir=tmp, extra_postargs=["-fopenmp"])
        except Exception:
            return False
    return True


class BuildExt(build_ext):
    """Adds -O3 and, where the compiler has it, OpenMP (the build succeeds without it)."""

    def build_extensions(self):
        unix = self.compiler.compiler_type == "unix"
        flags = ["-O3", "-fno-math-errno", "-fno-trapping-math", "-std=c11"] if unix else ["/O2"]
        link = []
        if os.environ.get("FASTPROP_NO_OPENMP") != "1" and unix and _compiler_has_openmp(self.compiler):
            flags.append("-fopenmp")
            link.append("-fopenmp")
        elif not unix:
            flags.append("/openmp")
        else:
            print("fastprop: building without OpenMP", file=sys.stderr)
        for ext in self.extensions:
            ext.extra_compile_args = flags + ext.extra_compile_args
            ext.extra_link_args = link + ext.extra_link_args
        super().build_extensions()


def _extension(name, pyx, c_sources=()):
    return Extension(
        name,
        sources=[pyx] + list(c_sources),
        include_dirs=["csrc", numpy.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        depends=glob.glob("csrc/*.h") + glob.glob("fastprop/*.pxd"),
    )


extensions = [_extension("fastprop._kernels", "fastprop/_kernels.pyx", sorted(glob.glob("csrc/*.c"))),
              _extension("fastprop._engine", "fastprop/_engine.pyx", sorted(glob.glob("csrc/*.c")))]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives={"language_level": "3"},
        include_path=["fastprop"],
    ),
    cmdclass={"build_ext": BuildExt},
)

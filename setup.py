"""Builds fastprop's extension modules from fastprop/*.pyx and csrc/*.c."""
import os
import sys
import tempfile
import glob

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


def _compiler_has_openmp(compiler, extra=()):
    """True if the compiler builds and links a program with -fopenmp (and `extra` flags, such as
    the sanitizers': without them in the probe, OpenMP would silently drop out of their build)."""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "omp.c")
        with open(src, "w") as f:
            f.write("#include <omp.h>\nint main(void) { return omp_get_max_threads() < 1; }\n")
        try:
            flags = ["-fopenmp"] + list(extra)
            objs = compiler.compile([src], output_dir=tmp, extra_postargs=flags)
            compiler.link_executable(objs, "omp", output_dir=tmp, extra_postargs=flags)
        except Exception:
            return False
    return True


def _sanitizers():
    """FASTPROP_SANITIZE=address,undefined builds with those sanitizers (see .ci/sanitize)."""
    value = os.environ.get("FASTPROP_SANITIZE", "").strip()
    if not value:
        return []
    names = [v.strip() for v in value.split(",") if v.strip()]
    for name in names:
        if name not in ("address", "undefined", "leak"):
            sys.exit(f"FASTPROP_SANITIZE: expected a comma-separated list of address, undefined "
                     f"and leak, got {value!r}")
    return ["-fsanitize=" + ",".join(names), "-fno-omit-frame-pointer",
            "-fno-sanitize-recover=all"]


class BuildExt(build_ext):
    """Adds -O3 and, where the compiler has it, OpenMP (the build succeeds without it).
    FMA contraction is off (-ffp-contract=off), so that every ISA clone of the element-wise
    kernels gives the same bits. FASTPROP_SANITIZE builds with sanitizers, at -O1 -g."""

    def build_extensions(self):
        unix = self.compiler.compiler_type == "unix"
        sanitize = _sanitizers() if unix else []
        optimize = ["-O1", "-g"] if sanitize else ["-O3"]
        flags = (optimize + ["-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off",
                             "-std=c11"] + sanitize) if unix else ["/O2"]
        link = list(sanitize)
        if os.environ.get("FASTPROP_NO_OPENMP") != "1" and unix and \
                _compiler_has_openmp(self.compiler, sanitize):
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


def _extension(name, pyx, c_sources=(), includes=()):
    return Extension(
        name,
        sources=[pyx] + list(c_sources),
        include_dirs=["csrc", numpy.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        depends=glob.glob("csrc/*.h") + glob.glob("fastprop/*.pxd") + list(includes),
    )


# Both modules call the C kernels directly, so each links its own copy of csrc/kernels.c (the
# objects are small, and an extension module's symbols stay private to it).
extensions = [_extension("fastprop._kernels", "fastprop/_kernels.pyx", sorted(glob.glob("csrc/*.c"))),
              _extension("fastprop._engine", "fastprop/_engine.pyx", sorted(glob.glob("csrc/*.c")),
                         ["fastprop/_passes.pxi"])]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives={"language_level": "3"},
        include_path=["fastprop"],
    ),
    cmdclass={"build_ext": BuildExt},
)

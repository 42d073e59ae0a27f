"""The machine a benchmark ran on, printed beside its figures: the CPU, the instruction-set
features that choose fastprop's kernels and BLAS's (AVX2, AVX-512, AVX512-BF16, AMX), the
cores this process may use, the library versions and every thread pool (BLAS, OpenMP)."""
import os
import platform

import numpy as np

import fastprop as fp

FEATURES = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")


def cpu():
    """(model name, the FEATURES this CPU has)."""
    name, flags = platform.processor() or "unknown", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and name in ("unknown", platform.processor()):
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return name, [f for f in FEATURES if f in flags]


def describe(versions=""):
    """Markdown bullet lines; `versions`: the peers' versions, appended to the library line."""
    from threadpoolctl import threadpool_info
    name, features = cpu()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    pools = threadpool_info()
    blas = [f"{i['internal_api']} {i['version']} ({i['prefix']}, {i.get('architecture', '?')}, "
            f"{i['num_threads']} threads, {i.get('threading_layer', '?')})"
            for i in pools if i["user_api"] == "blas"]
    omp = [f"{i['prefix']} {i['num_threads']} threads" for i in pools
           if i["user_api"] == "openmp"]
    lines = [f"- CPU: {name}; {os.cpu_count()} logical cores ({usable} usable); "
             f"{', '.join(features) or 'no AVX2'}" + ("" if "amx_tile" in features else
                                                       ", no AMX"),
             f"- Python {platform.python_version()}, NumPy {np.__version__}, fastprop "
             f"{fp.__version__}{versions}",
             "- BLAS: " + ("; ".join(blas) or "none found")]
    if omp:
        lines.append("- OpenMP: " + "; ".join(omp))
    return "\n".join(lines)

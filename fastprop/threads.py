"""How many threads a fit runs on: BLAS's and OpenMP's pools, bounded for the fit.

fit(n_threads=k) and the estimators' n_threads bound every pool to k (threadpoolctl). Without it,
the pools are left as they are, unless the step is large enough for BLAS to thread it and other
processes keep this process's cores busy: then the fit runs on the cores they leave free, never
above a limit already set. Measurements behind the threshold: benchmarks/threads.py (README,
"Threads").
"""
from __future__ import annotations

import contextlib
import os
import sys
import threading
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from ._validation import check_positive_int

if TYPE_CHECKING:
    from types import TracebackType

    from .model import Sequential

# Below this many multiply-adds in a step's forward pass (batch x sum of n_in x n_out), a fit
# runs on one thread: measured by benchmarks/threads.py (docs/performance.md, "Threads"), two threads lose
# or tie below it (OpenBLAS itself keeps such products on one thread) and win by 1.3-1.9x above.
THREADS_MIN_WORK = 500_000


def work_of(widths: Sequence[int], rows: int) -> int:
    """The multiply-adds of a forward pass of `rows` rows through layers of these widths
    (n_in of the first, then each layer's n_out): rows x sum of n_in x n_out."""
    return rows * sum(a * b for a, b in zip(widths, widths[1:]))


def step_work(model: Sequential, batch_size: Any, n_rows: int | None = None) -> int:
    """The multiply-adds of one step's forward pass of a model's fit: work_of its widths for
    min(batch_size, n_rows) rows."""
    try:  # before the arguments are checked: anything odd counts as small (fit then refuses it)
        rows = max(1, int(batch_size))
        per_row = model._row_work
    except Exception:
        return 0
    return per_row * (rows if n_rows is None else min(rows, n_rows))


def usable_cores() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


_controller: list[Any] = [None, -1]  # threadpoolctl's view of the pools, and len(sys.modules)
_lock = threading.Lock()
# the thread limits in force in this process: token -> (n_threads, lower_only)
_active: dict[object, tuple[int, bool]] = {}
_original: dict[str, int] = {}  # each process-wide pool's limit before the first of them
_fits = [0]     # fits running in this process (fit_limit)


def _per_thread(lib: Any) -> bool:
    """True for a pool whose limit is per calling thread (OpenMP's, and a BLAS threaded by
    OpenMP); OpenBLAS's own pthreads pool and the others are process-wide."""
    return lib.user_api == "openmp" or getattr(lib, "threading_layer", None) == "openmp"


def _set(lib: Any, n_threads: int) -> None:
    """Sets a pool's limit from any thread. threadpoolctl lets only one "controlling" thread set
    OpenBLAS's process-wide limit and silently ignores the others (its context manager hands
    control on, its direct calls do not): control is taken for the call and released after."""
    clear = getattr(type(lib), "clear_controlling_thread", None)
    if clear is not None:
        clear(force=True)
    lib.set_num_threads(n_threads)
    if clear is not None:
        clear(force=True)


def _apply(shared: list[Any]) -> None:
    """The process-wide pools at the smallest limit in force (a fit that asked for k threads
    never runs on more), or back where they were when none is."""
    for lib in shared:
        original = _original.get(lib.filepath, lib.num_threads)
        target = min((min(n, original) if lower else n for n, lower in _active.values()),
                     default=original)
        if lib.num_threads != target:
            _set(lib, target)


@contextlib.contextmanager
def limit_threads(n_threads: int, lower_only: bool = False) -> Iterator[None]:
    """A context that bounds BLAS and OpenMP to n_threads (lower_only: each pool to the smaller
    of n_threads and the limit it had, so a limit the user set is never raised), from whatever
    thread it is entered. Per-thread pools (OpenMP) are set in this thread and restored when it
    ends. Process-wide pools (OpenBLAS's) hold the smallest limit of the contexts in force in
    any thread, and return to their own limit when the last one ends. threadpoolctl's
    ThreadpoolController finds the pools by walking the loaded libraries (about 0.8 ms, longer
    than a small fit): it is kept, and found again only after new modules were imported."""
    n_threads = check_positive_int("n_threads", n_threads)
    token = object()
    with _lock:
        libs = _controller_now().lib_controllers
        shared = [lib for lib in libs if not _per_thread(lib)]
        if not _active:
            _original.clear()
            _original.update((lib.filepath, lib.num_threads) for lib in shared)
        _active[token] = (n_threads, lower_only)
        _apply(shared)
    own = [(lib, lib.num_threads) for lib in libs if _per_thread(lib)]
    for lib, found in own:
        _set(lib, min(n_threads, found) if lower_only else n_threads)
    try:
        yield
    finally:
        for lib, found in own:
            _set(lib, found)
        with _lock:
            del _active[token]
            _apply(shared)


def _controller_now() -> Any:
    from threadpoolctl import ThreadpoolController
    if _controller[0] is None or _controller[1] != len(sys.modules):
        _controller[0], _controller[1] = ThreadpoolController(), len(sys.modules)
    return _controller[0]


def _running_now() -> tuple[int, int] | None:
    """(threads runnable on the machine now, those of them that are this process's), from
    /proc/loadavg and /proc/self/task; None where there is no /proc."""
    try:
        with open("/proc/loadavg") as f:
            running = int(f.read().split()[3].split("/")[0])
        own = 0
        for tid in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{tid}/stat") as f:
                    stat = f.read()
            except OSError:  # the thread ended meanwhile
                continue
            own += stat[stat.rindex(")") + 2] == "R"
        return running, own
    except (OSError, ValueError, IndexError):
        return None


def others_load(cores: int) -> float:
    """About how many of this process's `cores` other processes keep busy now (the machine's
    load counted in proportion to the share of its CPUs this process may use). Cheap when the
    machine is not loaded: a 1-minute load average below cores - 1/2 (this process's own
    threads included) counts as none. Otherwise the threads runnable right now less this
    process's own, the median of three looks (the load average alone cannot tell this
    process's past threads from others')."""
    share = cores / max(cores, os.cpu_count() or cores)
    try:
        load = os.getloadavg()[0] * share
    except (AttributeError, OSError):
        return 0.0
    if load < cores - 0.5:
        return 0.0
    looks = []
    for _ in range(3):
        now = _running_now()
        if now is None:
            return 0.0
        looks.append(max(0, now[0] - now[1]))
    # /proc counts the whole machine's threads, a container's host's too: spread over all its
    # CPUs, the share that lands on this process's cores (all of them, outside a container)
    return float(sorted(looks)[1]) * share


def default_threads(model: Sequential, batch_size: int, n_rows: int | None = None) -> int | None:
    """The thread limit fit takes when n_threads is not given, or None to leave the thread pools
    as they are (all cores unless the user or the environment set fewer): threads_for_work of
    its step."""
    return threads_for_work(step_work(model, batch_size, n_rows))


def fit_limit(n_threads: int | None, work: int
              ) -> contextlib.AbstractContextManager[None]:
    """The thread limit of a fit (fastprop's and the scikit-learn estimators'), as a context:
    n_threads when given; else threads_for_work(work), lowering the pools only; else, while
    other fits run in this process, the cores shared out between them; else none."""
    if n_threads is not None:
        return limit_threads(n_threads)
    return _DefaultLimit(work)


class _DefaultLimit:
    """fit_limit's context without n_threads: counts the running fits, and limits only when
    the load or an overlapping fit calls for it."""
    __slots__ = ("work", "limit")

    def __init__(self, work: int) -> None:
        self.work = work
        self.limit: contextlib.AbstractContextManager[None] | None = None

    def __enter__(self) -> None:
        with _lock:
            _fits[0] += 1
            overlapping = _fits[0]
        default = threads_for_work(self.work)
        if overlapping > 1 and self.work >= THREADS_MIN_WORK:
            default = max(1, min(default or usable_cores(), usable_cores() // overlapping))
        if default is not None:
            self.limit = limit_threads(default, lower_only=True)
            self.limit.__enter__()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        try:
            if self.limit is not None:
                self.limit.__exit__(exc_type, exc, traceback)
        finally:
            with _lock:
                _fits[0] -= 1


def threads_for_work(work: int) -> int | None:
    """None for a step of fewer than THREADS_MIN_WORK multiply-adds in its forward pass (BLAS
    runs such products on one thread by itself, and fastprop's own loops thread only far above
    it) and on a machine with no other load; else the usable cores that other processes leave
    free (others_load), at least 1. On a machine whose cores are all taken, BLAS threads that
    wait for each other at every product collapse a fit (measured: 2 to 300 times slower,
    docs/performance.md, "Threads"), so a fit then runs on the cores left."""
    if work < THREADS_MIN_WORK:
        return None
    cores = usable_cores()
    if cores == 1:
        return None
    free = int(round(cores - others_load(cores)))
    return None if free >= cores else max(1, free)

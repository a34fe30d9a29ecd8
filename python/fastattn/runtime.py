"""Runtime controls: which ISA path the kernels use, how many threads, and what the build is.

The ISA path is chosen once at import (the best the CPU and OS support) unless the environment
variable ``FASTATTN_ISA`` names a lower one. ``set_isa`` / ``use_isa`` change it at run time;
the test suite uses ``use_isa`` to run every test on every path this machine has.
"""
from __future__ import annotations

import contextlib
import os
from typing import Callable, ContextManager, Iterator

from . import _core
from ._validate import integer

__all__ = [
    "available_isas", "get_isa", "set_isa", "use_isa",
    "get_num_threads", "set_num_threads", "threads", "cpu_info",
]


def available_isas() -> list[str]:
    """ISA paths this CPU and OS support, lowest first, e.g. ``['baseline', 'avx2']``."""
    return list(_core.available_isas())


def get_isa() -> str:
    """The ISA path kernels use now: ``'baseline'``, ``'avx2'`` or ``'avx512'``."""
    return _core.get_isa()


def set_isa(name: str) -> None:
    """Use the ISA path ``name`` from now on, for every thread.

    Raises ValueError for an unknown name or a path this CPU does not support.
    """
    if not isinstance(name, str):
        raise TypeError(f"set_isa: name must be a str, got {type(name).__name__}")
    _core.set_isa(name)


@contextlib.contextmanager
def _temporarily(get: Callable[[], object], set_: Callable[[object], None],
                 value) -> Iterator[None]:
    """set_(value) for the enclosed code, then set_ back to what get() returned before."""
    previous = get()
    set_(value)
    try:
        yield
    finally:
        set_(previous)


def use_isa(name: str) -> ContextManager[None]:
    """Context manager: run the enclosed code on ISA path ``name``, then restore the previous."""
    return _temporarily(get_isa, set_isa, name)


def get_num_threads() -> int:
    """Threads each kernel may use (1 when built without OpenMP)."""
    return _core.get_num_threads()


def set_num_threads(n: int) -> None:
    """Let kernels use ``n >= 1`` threads. Results do not depend on ``n`` (bit-identical)."""
    _core.set_num_threads(integer("set_num_threads", "n", n, 1))


def threads(n: int) -> ContextManager[None]:
    """Context manager: kernels use ``n`` threads inside, the previous count after."""
    return _temporarily(get_num_threads, set_num_threads, n)


def cpu_info() -> dict:
    """What the kernels run on: chosen ISA path, available paths, CPU model and features,
    threads, whether OpenMP is compiled in, compiler and build flags."""
    return {
        "isa": get_isa(),
        "best_isa": _core.best_isa(),
        "available_isas": available_isas(),
        "cpu_model": _core.cpu_model(),
        "features": list(_core.cpu_features()),
        "threads": get_num_threads(),
        "cpu_count": os.cpu_count(),
        "openmp": bool(_core.have_openmp()),
        "compiler": _core.compiler,
        "build_flags": _core.build_flags.strip(),
    }


def _apply_environment() -> None:
    """Honour FASTATTN_ISA at import; a path the CPU lacks is an error, not a silent fallback."""
    wanted = os.environ.get("FASTATTN_ISA", "").strip().lower()
    if wanted:
        try:
            _core.set_isa(wanted)
        except ValueError as e:
            raise ImportError(f"fastattn: FASTATTN_ISA={wanted!r}: {e}") from None

"""Views and layouts: what strides a kernel can read or write without a copy, the 2-D row views
of the row-wise kernels, and running a kernel into ``out`` through a temporary.

The kernels take float32 views with strides counted in elements, so a stride that is not a
whole number of elements (a hand-made byte view) always means a copy. Beyond that, each kernel
family needs a little more:

- matmul reads any such strides, negative and zero included (``aligned_or_copy``);
- attention, rope's neighbours and matmul's residual / out need a unit-stride last axis
  (``unit_rows_or_none`` / ``unit_rows_or_copy``), other axes free;
- the row-wise kernels (softmax, norms) take a 2-D (rows, n) array whose rows are one stride
  apart (``rows_view`` / ``as_rows``);
- the element-wise kernels and rope take C-contiguous arrays (``contiguous``,
  ``contiguous_or_none``).

Argument checks (dtype, shape, numbers, ``out=``) are in ``_validate``; this module only
decides how an already validated array is handed to a kernel.
"""
from __future__ import annotations

from typing import Callable

import numpy as np


def whole_elements(x: np.ndarray) -> bool:
    """Whether x's data pointer and every stride are whole numbers of elements. Size-1 axes
    count too: numpy's ``aligned`` flag skips them, the attention binding does not."""
    return x.flags.aligned and all(s % x.itemsize == 0 for s in x.strides)


def aligned_or_copy(x: np.ndarray) -> np.ndarray:
    """x itself when a kernel reading strided views can read it in place (``whole_elements``),
    else a C-contiguous copy."""
    # not np.ascontiguousarray: it returns a C-contiguous but misaligned array as it is
    return x if whole_elements(x) else x.copy(order="C")


def unit_rows_or_none(x: np.ndarray) -> np.ndarray | None:
    """x itself when a kernel can read or write it in place with a unit-stride last axis
    (other axes: any whole-element strides), else None. An empty array always qualifies."""
    if x.size == 0:
        return x
    unit_last = x.shape[-1] <= 1 or x.strides[-1] == x.itemsize
    return x if (unit_last and whole_elements(x)) else None


def unit_rows_or_copy(x: np.ndarray) -> np.ndarray:
    """x with a unit-stride last axis and whole-element strides: x itself, or a C-contiguous
    copy when its strides do not allow it."""
    view = unit_rows_or_none(x)
    return view if view is not None else x.copy(order="C")


def kernel_target(out: np.ndarray, shape) -> np.ndarray | None:
    """``out`` seen with the kernel's output ``shape`` (unit-stride rows) without a copy; None
    when that needs a copy. A C-contiguous ``out`` of another shape with the same size is
    reshaped (a view); a strided one must already have ``shape``."""
    if out.flags.c_contiguous and out.flags.aligned:
        return out.reshape(shape)
    return unit_rows_or_none(out) if out.shape == tuple(shape) else None


def contiguous(x: np.ndarray) -> np.ndarray:
    """x, or its C-contiguous copy. Unlike np.ascontiguousarray, a 0-d array stays 0-d, and a
    float32 view at a byte offset that is not a multiple of 4 is copied too (the kernels'
    float loads at such an address are undefined behaviour)."""
    return x if x.flags.c_contiguous and x.flags.aligned else x.copy(order="C")


def contiguous_or_none(x: np.ndarray) -> np.ndarray | None:
    """x when it is C-contiguous and aligned, else None (a target for ``run_into``)."""
    return x if x.flags.c_contiguous and x.flags.aligned else None


def rows_view(x: np.ndarray) -> np.ndarray | None:
    """``x`` seen as 2-D (rows, last axis) without a copy, with contiguous rows; None when the
    strides do not allow it. Size-1 axes are ignored; the row stride may be negative."""
    n = x.shape[-1]
    if not x.flags.aligned:          # a byte-offset view: the kernels need float alignment
        return None
    if n and x.flags.c_contiguous:   # the common case, without the stride analysis below
        return x.reshape(-1, n)
    if n > 1 and x.strides[-1] != x.itemsize:
        return None
    lead = [(s, st) for s, st in zip(x.shape[:-1], x.strides[:-1]) if s != 1]
    rows = int(np.prod([s for s, _ in lead], dtype=np.int64)) if lead else 1
    row_stride = lead[-1][1] if lead else n * x.itemsize
    # the leading axes must merge into one axis of stride row_stride
    expected = row_stride
    for s, st in reversed(lead):
        if st != expected:
            return None
        expected = st * s
    return np.lib.stride_tricks.as_strided(x, shape=(rows, n), strides=(row_stride, x.itemsize))


def as_rows(x: np.ndarray) -> np.ndarray:
    """2-D rows view of ``x``, copying only if its strides do not allow a view."""
    v = rows_view(x)
    # not np.ascontiguousarray: it returns a C-contiguous but misaligned array as it is
    return v if v is not None else x.copy(order="C").reshape(-1, x.shape[-1])


def run_into(out: np.ndarray, kernel: Callable[[np.ndarray], object],
             view: Callable[[np.ndarray], np.ndarray | None]) -> np.ndarray:
    """Calls ``kernel(target)`` where target is ``view(out)`` when that is possible without a
    copy, else ``view`` of a C-contiguous temporary that is copied into ``out`` afterwards
    (``view`` must accept any C-contiguous array of out's shape). Returns ``out``."""
    target = view(out)
    if target is not None:
        kernel(target)
        return out
    tmp = np.empty(out.shape, dtype=np.float32)
    kernel(view(tmp))
    np.copyto(out, tmp)
    return out


def run_rows(x: np.ndarray, axis: int, out: np.ndarray,
             kernel: Callable[[np.ndarray, np.ndarray], object]) -> np.ndarray:
    """Runs a last-axis row kernel ``kernel(x2d, out2d)`` over ``axis`` (normalised) of ``x``
    into ``out`` (validated, x's shape). Returns ``out``.

    The last axis is the zero-copy fast path; another axis is moved last, which costs a
    transposed copy (the kernels need contiguous rows)."""
    if x.size == 0:
        return out
    last = axis == x.ndim - 1
    xt = x if last else np.moveaxis(x, axis, -1)
    ot = out if last else np.moveaxis(out, axis, -1)
    x2 = as_rows(xt)
    run_into(ot, lambda o2: kernel(x2, o2), rows_view)
    return out

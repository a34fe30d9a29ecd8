"""The NumPy boundary, shared by every op wrapper.

Convention (README "Errors"): inputs must be ``numpy.ndarray`` of dtype float32; anything else
(another dtype, a list) raises TypeError naming the op, the argument, what was expected and
what was given. Shapes, axes and parameters that don't fit raise ValueError in the same form.
C-contiguous inputs are used without a copy; other strides are copied into a contiguous buffer
first (correct for any strides, negative included). ``out=`` must be a writable float32 array
of the result's shape; a non-contiguous ``out`` receives the result through a temporary. An
``out`` that is exactly an input (same memory, same strides) computes in place; any other
overlap with an input is refused.
"""
from __future__ import annotations

import numbers

import numpy as np


def float32_array(op: str, name: str, x) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{op}: {name} must be a numpy.ndarray of float32, got {type(x).__name__}")
    if x.dtype != np.float32:
        raise TypeError(f"{op}: {name} must be float32, got {x.dtype}")
    return x


def optional_float32(op: str, name: str, x) -> np.ndarray | None:
    return None if x is None else float32_array(op, name, x)


def shape_str(shape) -> str:
    return str(tuple(int(s) for s in shape))


def require_shape(op: str, name: str, x: np.ndarray, expected, why: str = "") -> None:
    if tuple(x.shape) != tuple(expected):
        suffix = f" {why}" if why else ""
        raise ValueError(
            f"{op}: {name} has shape {shape_str(x.shape)}, expected {shape_str(expected)}{suffix}")


def normalize_axis(op: str, axis, ndim: int) -> int:
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"{op}: axis must be an int, got {type(axis).__name__}")
    if ndim == 0:
        raise ValueError(f"{op}: x must have at least 1 dimension, got a 0-d array")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{op}: axis {axis} is out of range for a {ndim}-D array")
    return int(axis) % ndim


def integer(op: str, name: str, value, minimum: int | None = None,
            maximum: int | None = None) -> int:
    """``value`` as a Python int: TypeError unless it is an integer (bool is not), ValueError
    outside [minimum, maximum] (either bound may be None)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{op}: {name} must be an int, got {type(value).__name__}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{op}: {name} must be <= {maximum}, got {value}")
    return int(value)


def flag(op: str, name: str, value) -> bool:
    """``value`` as a Python bool: TypeError unless it is a bool (numpy's included)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{op}: {name} must be a bool, got {type(value).__name__}")
    return bool(value)


def positive_float(op: str, name: str, value, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{op}: {name} must be a number, got {type(value).__name__}")
    v = float(value)
    if not np.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        expected = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{op}: {name} must be finite and {expected}, got {value}")
    return v


def _same_view(a: np.ndarray, b: np.ndarray) -> bool:
    return (a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
            and a.shape == b.shape and a.strides == b.strides)


def prepare_out(op: str, out, shape, inputs: dict) -> np.ndarray:
    """A validated ``out`` (or a fresh array). ``inputs`` maps argument names to arrays."""
    if out is None:
        return np.empty(shape, dtype=np.float32)
    float32_array(op, "out", out)
    if not out.flags.writeable:
        raise ValueError(f"{op}: out is read-only")
    require_shape(op, "out", out, shape)
    for name, x in inputs.items():
        if x is not None and np.may_share_memory(out, x) and not _same_view(out, x):
            raise ValueError(f"{op}: out overlaps {name} without being the same view of it; "
                             f"pass out={name} for in-place, or a separate array")
    return out


def rows_view(x: np.ndarray) -> np.ndarray | None:
    """``x`` seen as 2-D (rows, last axis) without a copy, with contiguous rows; None when the
    strides do not allow it. Size-1 axes are ignored; the row stride may be negative."""
    n = x.shape[-1]
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
    return v if v is not None else np.ascontiguousarray(x).reshape(-1, x.shape[-1])


def run_into(out: np.ndarray, kernel, view) -> np.ndarray:
    """Calls ``kernel(target)`` where target is ``view(out)`` when that is possible without a
    copy, else a temporary that is copied into ``out`` afterwards."""
    target = view(out)
    if target is not None:
        kernel(target)
        return out
    tmp = np.empty(out.shape, dtype=np.float32)
    kernel(view(tmp))
    np.copyto(out, tmp)
    return out


def contiguous_or_none(x: np.ndarray) -> np.ndarray | None:
    return x if x.flags.c_contiguous else None

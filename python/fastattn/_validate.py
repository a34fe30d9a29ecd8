"""The NumPy boundary, shared by every op wrapper.

Convention (the README's "The NumPy boundary"; details in docs/ops.md): inputs must be
``numpy.ndarray`` of dtype float32; anything else (another dtype, a list) raises TypeError
naming the op, the argument, what was expected and what was given. Shapes, axes and
parameters that don't fit raise ValueError in the same form. C-contiguous inputs are used
without a copy; other strides are copied into a contiguous buffer first (correct for any
strides, negative included). ``out=`` must be a writable float32 array of the result's
shape; a non-contiguous ``out`` receives the result through a temporary. An ``out`` that is
exactly an input (same memory, same strides) computes in place; any other overlap with an
input is refused.

This module checks arguments (dtype, shape, numbers, ``out=``); how a checked array is handed
to a kernel (views, copies, temporaries) is ``_layout``'s.
"""
from __future__ import annotations

import numbers

import numpy as np


def float32_array(op: str, name: str, x) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{op}: {name} must be a numpy.ndarray of float32, got {type(x).__name__}")
    # dtype equality, never identity: an unpickled array or a dtype with metadata carries a
    # distinct dtype object that is still float32; a byte-swapped '>f4' is not equal.
    if x.dtype != np.float32:
        raise TypeError(f"{op}: {name} must be float32, got {x.dtype}")
    return x


def optional_float32(op: str, name: str, x) -> np.ndarray | None:
    return None if x is None else float32_array(op, name, x)


def shape_str(shape) -> str:
    """A shape as a message prints it: ``(2, 3)``, ``(4,)``, ``()``."""
    return str(tuple(int(s) for s in shape))


def shapes_str(**shapes) -> str:
    """The shapes of the named arrays in a message: ``shapes_str(a=(2, 3), b=(4,))`` is
    "a has shape (2, 3) and b has shape (4,)"."""
    parts = [f"{name} has shape {shape_str(s)}" for name, s in shapes.items()]
    return " and ".join(parts) if len(parts) <= 2 else ", ".join(parts[:-1]) + " and " + parts[-1]


def require_shape(op: str, name: str, x: np.ndarray, expected, why: str = "") -> None:
    """ValueError "op: name has shape (a, b), expected (c, d) why" unless x has ``expected``."""
    if tuple(x.shape) != tuple(expected):
        suffix = f" {why}" if why else ""
        raise ValueError(
            f"{op}: {name} has shape {shape_str(x.shape)}, expected {shape_str(expected)}{suffix}")


def normalize_axis(op: str, axis, ndim: int) -> int:
    """``axis`` of an ``ndim``-D array as an index in [0, ndim) (negative counts from the end)."""
    axis = integer(op, "axis", axis)
    if ndim == 0:
        raise ValueError(f"{op}: x must have at least 1 dimension, got a 0-d array")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{op}: axis {axis} is out of range for a {ndim}-D array")
    return axis % ndim


def str_items(op: str, name: str, items) -> list:
    """``list(items)``; TypeError "op: name must be str, found int (item 3)" at the first item
    that is not a str."""
    items = list(items)
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise TypeError(f"{op}: {name} must be str, found {type(item).__name__} (item {i})")
    return items


def is_integer(value) -> bool:
    """Whether ``value`` is an integer: a Python or NumPy int, not a bool (True is not a count)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def integer(op: str, name: str, value, minimum: int | None = None,
            maximum: int | None = None, *, optional: bool = False) -> int | None:
    """``value`` as a Python int: TypeError unless ``is_integer(value)`` (or, with
    ``optional``, it is None, returned as is); ValueError outside [minimum, maximum] (either
    bound may be None)."""
    if optional and value is None:
        return None
    if not is_integer(value):
        expected = "None or an int" if optional else "an int"
        raise TypeError(f"{op}: {name} must be {expected}, got {type(value).__name__}")
    if minimum is not None and maximum is not None and not minimum <= value <= maximum:
        raise ValueError(f"{op}: {name} must be an int in [{minimum}, {maximum}], got {value}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{op}: {name} must be <= {maximum}, got {value}")
    return int(value)


def flag(op: str, name: str, value, *, optional: bool = False) -> bool | None:
    """``value`` as a Python bool: TypeError unless it is a bool (numpy's included) or, with
    ``optional``, None (returned as is)."""
    if optional and value is None:
        return None
    if not isinstance(value, (bool, np.bool_)):
        expected = "None or a bool" if optional else "a bool"
        raise TypeError(f"{op}: {name} must be {expected}, got {type(value).__name__}")
    return bool(value)


def one_of(op: str, name: str, value, choices):
    """``value`` if it is one of ``choices``, else ValueError listing them:
    "op: name must be 'a', 'b' or 'c', got 'x'"."""
    if value not in choices:
        names = [repr(c) for c in choices]
        listed = ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]
        raise ValueError(f"{op}: {name} must be {listed}, got {value!r}")
    return value


def positive_float(op: str, name: str, value, allow_zero: bool = False, *,
                   float32: bool = False) -> float:
    """``value`` as a Python float: TypeError unless a real number (not a bool); ValueError
    unless finite and > 0 (>= 0 with ``allow_zero``), and with ``float32`` finite in float32
    too (a kernel parameter: 1e39 is a finite float but inf in float32)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{op}: {name} must be a number, got {type(value).__name__}")
    v = float(value)
    if not np.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        expected = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{op}: {name} must be finite and {expected}, got {value}")
    return finite_float32(op, name, v) if float32 else v


FLOAT32_MAX = float(np.finfo(np.float32).max)


def finite_float32(op: str, name: str, value: float) -> float:
    """``value`` (a float) if it is finite in float32, |value| <= FLOAT32_MAX (the bindings'
    rule too), else ValueError: a scale of 1e39 would reach the kernel as inf."""
    if not abs(value) <= FLOAT32_MAX:
        raise ValueError(f"{op}: {name} must be finite in float32 (|{name}| <= "
                         f"{FLOAT32_MAX:.8g}), got {value}")
    return value


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

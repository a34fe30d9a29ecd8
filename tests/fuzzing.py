"""Shared pieces of the property-based (hypothesis) tests, tests/test_fuzz_*.py.

- ``FUZZ``: the settings every fuzz test uses. Derandomized (the examples are a function of the
  test's source, so CI runs are reproducible and a failure reproduces by rerunning), no example
  database, no deadline (the first call on a path pays for thread start-up). The count per op
  and ISA path is ``FASTATTN_FUZZ_EXAMPLES`` (default 30); raise it for a longer, nightly-style
  run (docs/development.md).
- ``Layout`` / ``layouts``: how an array sits in memory - axes permuted, stepped, reversed,
  offset inside a larger buffer, broadcast (stride 0) or at a byte offset that is not a whole
  float. ``Guarded`` / ``place`` put a view there; every other byte of the buffer holds
  ``SENTINEL_BITS`` (a NaN), so a kernel that reads outside its view produces NaN where the
  reference has none, and ``Guarded.check`` finds any write outside the view.
- ``values``: float32 data from a drawn seed and scale (NumPy's generator is much faster than
  drawing elements one by one; hypothesis still shrinks the shape, layout, seed and scale).
- ``run_out``: ``out=`` passed as one of ``OUT_MODES`` - None, a guarded view, the input
  itself (in place), or another view sharing memory with an input (must raise ValueError).
- ``assert_close``: NaN, infinities and a per-element bound against the float64 reference.
- ``bad_kind_call``: wrong kinds of argument (``BAD_KINDS``) must raise TypeError.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, settings
from hypothesis import strategies as st

import fastattn

EXAMPLES = int(os.environ.get("FASTATTN_FUZZ_EXAMPLES", "30"))
# Views at a byte offset that is not a whole float: FASTATTN_FUZZ_MISALIGNED=0 leaves them out
# (scripts/sanitize.sh does, while they reach the kernels: tests/test_fuzz_alignment.py).
MISALIGNED = os.environ.get("FASTATTN_FUZZ_MISALIGNED", "1") != "0"

FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    # the isa fixture is function-scoped on purpose: one ISA path for all examples of a test
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

# A NaN with a payload no kernel produces: 0x7FA5A5A5.
SENTINEL_BITS = np.uint32(0x7FA5A5A5)

# Wrong kinds of argument for a float32 array parameter: each must raise TypeError. ">f4" is
# float32 with the other byte order: equal values, another dtype.
BAD_KINDS = ["float64", "float16", "int32", ">f4", "list"]


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where a view of a given shape sits in a larger buffer. Per view axis: ``steps`` (the
    index step, negative = reversed), ``pads`` (elements before and after it in the buffer),
    ``broadcast`` (read with stride 0: a read-only view); ``perm`` the order the axes are stored
    in (``perm[i]`` is the view axis stored i-th); ``byte_offset`` 0..3 (not 0: a hand-made
    view whose strides are not whole floats)."""
    perm: tuple
    steps: tuple
    pads: tuple
    broadcast: tuple
    byte_offset: int

    @property
    def writable(self) -> bool:
        return not any(self.broadcast)

    def _extent(self, a: int, n: int) -> int:
        if self.broadcast[a]:
            return 1 + 2 * self.pads[a]
        return max(n - 1, 0) * abs(self.steps[a]) + (1 if n else 0) + 2 * self.pads[a]

    def base_shape(self, shape) -> tuple:
        return tuple(self._extent(a, shape[a]) for a in self.perm)

    def view_of(self, base: np.ndarray, shape) -> np.ndarray:
        """The view, given a buffer of ``base_shape(shape)`` (any dtype)."""
        v = base.transpose(np.argsort(self.perm)) if base.ndim else base
        index = []
        for a, n in enumerate(shape):
            p, s = self.pads[a], abs(self.steps[a])
            if self.broadcast[a]:
                index.append(slice(p, p + 1))
            elif n == 0:
                index.append(slice(p, p))
            elif self.steps[a] > 0:
                index.append(slice(p, p + (n - 1) * s + 1, s))
            else:
                index.append(slice(p + (n - 1) * s, p - 1 if p > 0 else None, -s))
        v = v[tuple(index)] if index else v  # v[()] of a 0-d array is a scalar, not a view
        if any(self.broadcast):
            v = np.broadcast_to(v, shape)
        assert v.shape == tuple(shape), (v.shape, shape, self)
        return v


def contiguous_layout(ndim: int) -> Layout:
    return Layout(tuple(range(ndim)), (1,) * ndim, (0,) * ndim, (False,) * ndim, 0)


@st.composite
def layouts(draw, ndim: int, *, writable: bool = False, misaligned: bool = True) -> Layout:
    """Any layout of an ndim-D view; ``writable``: no broadcast axis (an ``out``);
    ``misaligned``: a byte offset that is not a whole float may be drawn."""
    kind = draw(st.sampled_from(["contiguous", "strided", "strided", "transposed"]))
    if kind == "contiguous" or ndim == 0:
        layout = contiguous_layout(ndim)
    else:
        perm = tuple(range(ndim))
        if kind == "transposed":
            perm = tuple(draw(st.permutations(range(ndim))))
        steps = tuple(draw(st.sampled_from([1, 1, 2, 3, -1, -2])) for _ in range(ndim))
        pads = tuple(draw(st.integers(0, 2)) for _ in range(ndim))
        broadcast = tuple(False if writable else draw(st.sampled_from([False, False, False, True]))
                          for _ in range(ndim))
        layout = Layout(perm, steps, pads, broadcast, 0)
    if misaligned and MISALIGNED and draw(st.integers(0, 7)) == 0:
        layout = dataclasses.replace(layout, byte_offset=draw(st.integers(1, 3)))
    return layout


def buffer(layout: Layout, shape) -> np.ndarray:
    """A float32 buffer for ``layout`` (at its byte offset), filled with the sentinel."""
    base_shape = layout.base_shape(shape)
    n = int(np.prod(base_shape, dtype=np.int64))
    raw = np.empty(n * 4 + 4, np.uint8)
    # NumPy allocations are at least 16-byte aligned, so byte_offset is the misalignment
    base = raw[layout.byte_offset:layout.byte_offset + n * 4].view(np.float32)
    base = base.reshape(base_shape)
    base.view(np.uint32)[...] = SENTINEL_BITS
    return base


class Guarded:
    """A view laid out as ``layout`` says inside a larger buffer whose other bytes hold the
    sentinel (False for a bool mask); ``values`` (optional) are written into it. Along a
    broadcast axis every index reads values' first one, so callers take the data from
    ``view``. ``check()`` asserts that no byte outside the view changed."""

    def __init__(self, layout: Layout, shape, values: np.ndarray | None = None):
        self.layout, self.shape = layout, tuple(shape)
        base_shape = layout.base_shape(shape)
        is_mask = values is not None and values.dtype == np.bool_
        self.base = np.zeros(base_shape, bool) if is_mask else buffer(layout, shape)
        # a broadcast axis stores one element: write values' first slice through a plain view
        sub_shape = tuple(min(n, 1) if b else n for n, b in zip(shape, layout.broadcast))
        plain = dataclasses.replace(layout, broadcast=(False,) * len(self.shape))
        self.covered = np.zeros(base_shape, bool)
        plain.view_of(self.covered, sub_shape)[...] = True
        if values is not None:
            plain.view_of(self.base, sub_shape)[...] = values[tuple(slice(0, m) for m in sub_shape)]
        self.view = layout.view_of(self.base, shape)

    def check(self) -> None:
        if self.base.dtype == np.bool_:
            assert not np.any(self.base[~self.covered]), "bytes outside the mask view changed"
            return
        bits = self.base.view(np.uint32)[~self.covered]
        bad = np.flatnonzero(bits != SENTINEL_BITS)
        assert bad.size == 0, (f"{bad.size} floats outside the view changed (first: guard "
                               f"element {bad[0]}, now {bits[bad[0]]:#x}); {self.layout}")


def place(data, x: np.ndarray, *, writable: bool = False, **kw) -> Guarded:
    """x placed in a drawn layout (``layouts`` arguments)."""
    return Guarded(data.draw(layouts(x.ndim, writable=writable, **kw)), x.shape, x)


def view(g: Guarded | None) -> np.ndarray | None:
    """g's view, or None for an absent optional argument."""
    return None if g is None else g.view


OUT_MODES = ["none", "guarded", "guarded", "in_place", "overlap"]


def overlapping_out(g: Guarded, shape) -> np.ndarray | None:
    """A float32 view of ``shape`` over g's buffer that shares elements with g.view without
    being that very view, or None when there is none (an empty array overlaps nothing)."""
    size = int(np.prod(shape, dtype=np.int64))
    if g.base.dtype != np.float32 or size == 0 or g.view.size == 0:
        return None
    flat = g.base.reshape(-1)
    first = (g.view.__array_interface__["data"][0] - g.base.__array_interface__["data"][0]) // 4
    start = min(first, flat.size - size)  # a run of `size` floats through the view's first
    if start < 0:
        return None
    out = flat[start:start + size].reshape(shape)
    same = (out.__array_interface__["data"][0] == g.view.__array_interface__["data"][0]
            and out.shape == g.view.shape and out.strides == g.view.strides)
    if same:  # the very view: reverse it
        axes = [a for a, n in enumerate(shape) if n >= 2]
        if not axes:
            return None
        out = np.flip(out, axes[0])
    return out


def run_out(data, mode: str, call, out_shape, *, in_place: Guarded | None = None,
            overlaps=()):
    """``call(out)`` with ``out`` passed as ``mode`` says: "none" (None), "guarded" (a view in a
    drawn layout inside a sentinel-filled buffer; the margins and gaps must stay untouched),
    "in_place" (the writable input ``in_place``: the very same view), "overlap" (a view of
    out's shape sharing elements with one of the ``overlaps`` inputs, each a Guarded: refused
    with ValueError). Returns the result, or None when the call was refused as it must be. A
    mode that does not apply runs as "none"."""
    if mode == "in_place" and in_place is not None:
        result = call(in_place.view)
        assert result is in_place.view
        in_place.check()
        return result
    if mode == "overlap":
        for g in overlaps:
            other = overlapping_out(g, out_shape)
            if other is not None:
                with pytest.raises(ValueError, match="overlaps"):
                    call(other)
                return None
    if mode == "guarded":
        out = Guarded(data.draw(layouts(len(out_shape), writable=True)), out_shape)
        result = call(out.view)
        assert result is out.view
        out.check()
        return result
    result = call(None)
    assert result.dtype == np.float32 and result.shape == tuple(out_shape)
    return result


def run_checked(data, mode: str, call, out_shape, *, inputs, in_place: Guarded | None = None,
                overlaps=None, expected: np.ndarray | None = None):
    """``run_out`` with a drawn thread count, the inputs' (Guarded or None) margins checked
    after; with ``expected``, the result (unless refused) must be those bits exactly.
    ``overlaps`` defaults to every input."""
    inputs = [g for g in inputs if g is not None]
    with drawn_threads(data):
        result = run_out(data, mode, call, out_shape, in_place=in_place,
                         overlaps=inputs if overlaps is None else overlaps)
    for g in inputs:
        g.check()
    if result is not None and expected is not None:
        assert np.array_equal(result, expected, equal_nan=True)
    return result


def assert_close(y: np.ndarray, ref: np.ndarray, bound) -> None:
    """NaN exactly where the reference has NaN, the same infinities (a reference beyond
    float32's range is its infinity), elsewhere |y - ref| <= bound (broadcast); on failure,
    the worst element."""
    y64 = np.asarray(y, np.float64)
    ref = np.asarray(ref, np.float64)
    with np.errstate(over="ignore"):
        ref = np.where(np.isinf(ref.astype(np.float32)), ref.astype(np.float32), ref)
    assert y64.shape == ref.shape
    nan = np.isnan(ref)
    assert np.array_equal(np.isnan(y64), nan), (
        f"NaN at {np.argwhere(np.isnan(y64) != nan)[:3].tolist()}: got "
        f"{y64[np.isnan(y64) != nan][:3]}, expected {ref[np.isnan(y64) != nan][:3]}")
    inf = np.isinf(ref)
    assert np.array_equal(y64[inf], ref[inf]), "infinities differ"
    with np.errstate(invalid="ignore"):
        excess = np.where(nan | inf, -1.0, np.abs(y64 - ref) - bound)
    if excess.size:
        i = np.unravel_index(int(np.argmax(excess)), excess.shape)
        assert excess[i] <= 0, (f"worst at {tuple(int(j) for j in i)}: got {y64[i]!r}, "
                                f"expected {ref[i]!r}, excess {excess[i]:.3g}")


@contextlib.contextmanager
def drawn_threads(data):
    """Runs the block with 1, 2 or 3 threads (drawn): results must not depend on it, and the
    sanitizer build then sees every split of the work."""
    with fastattn.threads(data.draw(st.sampled_from([1, 2, 3]), label="threads")):
        yield


def values(data, shape, *, scales=(1.0,), specials: bool = False) -> np.ndarray:
    """float32 data of ``shape``: standard normal times a drawn scale, from a drawn seed; with
    ``specials``, sometimes NaN, +inf or -inf at a few drawn places."""
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    scale = data.draw(st.sampled_from(scales), label="scale")
    x = np.array(np.random.default_rng(seed).standard_normal(shape) * scale, np.float32)
    if specials and x.size and data.draw(st.integers(0, 3)) == 0:
        for _ in range(data.draw(st.integers(1, 3))):
            i = data.draw(st.integers(0, x.size - 1))
            x.flat[i] = data.draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    return x


def dims(small: int = 9):
    """An axis length: mostly small, 0 and 1 included, sometimes around a SIMD width."""
    return st.one_of(st.integers(0, small), st.sampled_from([15, 16, 17, 31, 33, 63, 64, 65]))


# A leading axis: empty about one time in eight (every empty axis makes the whole array empty)
LEADING = st.sampled_from([1, 2, 3, 1, 4, 5, 2, 0])


def shapes(data, ndim_min: int, ndim_max: int, *, last=None, max_size: int = 20000) -> tuple:
    """A shape with ndim_min..ndim_max axes: leading axes 0..5 (``LEADING``), the last from ``last``
    (default ``dims()``), at most ``max_size`` elements."""
    ndim = data.draw(st.integers(ndim_min, ndim_max), label="ndim")
    lead = [data.draw(LEADING) for _ in range(ndim - 1)]
    shape = tuple(lead + ([data.draw(last or dims())] if ndim else []))
    assume(int(np.prod(shape, dtype=np.int64)) <= max_size)
    return shape


def bad_kind_call(data, call, x: np.ndarray, op: str, name: str) -> None:
    """``call(bad)`` for x turned into a drawn wrong kind (float64, float16, int32, the other
    byte order, a list) must raise TypeError naming the op and the argument."""
    kind = data.draw(st.sampled_from(BAD_KINDS), label="bad kind")
    bad = x.tolist() if kind == "list" else x.astype(np.dtype(kind))
    with pytest.raises(TypeError, match=rf"{op}: {name} must be"):
        call(bad)

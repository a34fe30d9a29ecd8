"""View and layout helpers (fastattn._layout): which arrays a kernel reads or writes in place,
and that every fallback is a copy with the same values (never a view of other memory)."""
import numpy as np
import pytest

from fastattn import _layout


def _unaligned(shape):
    """A float32 array whose data pointer is one byte off a float boundary."""
    n = int(np.prod(shape))
    raw = np.zeros(n * 4 + 1, np.uint8)
    return raw[1:].view(np.float32).reshape(shape)


def test_whole_elements_and_aligned_or_copy():
    x = np.arange(24, dtype=np.float32).reshape(4, 6)
    for view in (x, x[:, ::2], x[::-1], x.T, np.broadcast_to(x[:1], (5, 6))):
        assert _layout.whole_elements(view)
        assert _layout.aligned_or_copy(view) is view  # any whole-element strides, in place
    odd = np.lib.stride_tricks.as_strided(x, shape=(2, 3), strides=(10, 4))
    assert not _layout.whole_elements(odd)
    copy = _layout.aligned_or_copy(odd)
    assert copy.flags.c_contiguous and np.array_equal(copy, odd)
    shifted = _unaligned((2, 3))
    assert not _layout.whole_elements(shifted)
    assert _layout.aligned_or_copy(shifted).flags.aligned


def test_unit_rows():
    x = np.zeros((3, 4, 5), np.float32)
    assert _layout.unit_rows_or_none(x[:, ::2]) is not None      # other axes: any stride
    assert _layout.unit_rows_or_none(x[..., ::2]) is None        # last axis strided
    assert _layout.unit_rows_or_none(x[..., :1][..., ::-1]) is not None  # one element per row
    assert _layout.unit_rows_or_none(x[:0, :, ::2]) is not None  # empty: nothing to read
    strided = np.arange(10, dtype=np.float32)[::2].reshape(1, 5)
    copy = _layout.unit_rows_or_copy(strided)
    assert copy.strides[-1] == 4 and np.array_equal(copy, strided)


def test_kernel_target():
    out = np.zeros((2, 3, 4), np.float32)
    target = _layout.kernel_target(out, (6, 4))
    assert target.shape == (6, 4) and np.shares_memory(target, out)
    assert _layout.kernel_target(out[:, ::2], (2, 2, 4)) is not None  # same shape, unit rows
    assert _layout.kernel_target(out[:, ::2], (4, 4)) is None         # would need a reshape
    assert _layout.kernel_target(out[..., ::2], (2, 3, 2)) is None    # strided rows


def test_contiguous_keeps_zero_d():
    s = np.array(1.5, np.float32)
    assert _layout.contiguous(s).shape == ()
    x = np.arange(6, dtype=np.float32).reshape(2, 3).T
    c = _layout.contiguous(x)
    assert c.flags.c_contiguous and np.array_equal(c, x)
    assert _layout.contiguous_or_none(x) is None and _layout.contiguous_or_none(c) is c


@pytest.mark.parametrize("make", [
    lambda x: x,
    lambda x: x[::-1],                       # negative row stride
    lambda x: x[:, None, :],                 # size-1 axis
    lambda x: x.reshape(2, 3, 8)[::-1, ::-1],  # leading axes that merge into one row axis
])
def test_rows_view_is_a_view(make):
    x = make(np.arange(48, dtype=np.float32).reshape(6, 8))
    rows = _layout.rows_view(x)
    assert rows is not None and np.shares_memory(rows, x)
    np.testing.assert_array_equal(rows, x.reshape(-1, 8))


def test_rows_view_refuses_and_as_rows_copies():
    x = np.arange(48, dtype=np.float32).reshape(6, 8)
    for bad in (x[:, ::2], x.reshape(2, 3, 8).transpose(1, 0, 2)):
        assert _layout.rows_view(bad) is None
        rows = _layout.as_rows(bad)
        assert not np.shares_memory(rows, x)
        np.testing.assert_array_equal(rows, bad.reshape(-1, bad.shape[-1]))


def test_run_into_through_a_temporary():
    def kernel(target):
        target[...] = np.arange(target.size, dtype=np.float32).reshape(target.shape)

    direct = np.zeros((2, 3), np.float32)
    assert _layout.run_into(direct, kernel, _layout.contiguous_or_none) is direct
    base = np.zeros((2, 6), np.float32)
    strided = base[:, ::2]  # not C-contiguous: written through a temporary
    assert _layout.run_into(strided, kernel, _layout.contiguous_or_none) is strided
    np.testing.assert_array_equal(strided, direct)
    assert not base[:, 1::2].any()  # the gaps are untouched


def test_run_rows_over_another_axis():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    out = np.empty_like(x)

    def row_sums_minus(a2, o2):  # o = x - sum(row), row-wise
        o2[...] = a2 - a2.sum(axis=1, keepdims=True)

    assert _layout.run_rows(x, 1, out, row_sums_minus) is out
    np.testing.assert_array_equal(out, x - x.sum(axis=1, keepdims=True))

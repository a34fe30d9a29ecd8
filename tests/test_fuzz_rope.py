"""Property-based tests of rope (tests/fuzzing.py): random B, H, L, D (0 and 1 included, odd
D with partial rotary), both styles, every scaling type, theta from 1 to 1e30, positions of any
integer dtype and order, shared or per sequence, contiguous ranges, gathers, negative ones,
within int32 (beyond it, up to 2**62, in tests/hostile_cases.py), layouts, out= modes (in place
on x), thread counts, on every ISA path. The result must be within the bound of
tests/test_rope.py (``check``), bit for bit the result of the same call on a contiguous copy;
wrong kinds of argument raise TypeError."""
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import fastattn
from fastattn.ops.rope import STYLES
from fuzzing import FUZZ, LEADING, OUT_MODES, bad_kind_call, place, run_checked, values
from test_rope import check
from test_rope_frequencies import SCALINGS

POSITION_DTYPES = [np.int64, np.int64, np.int32, np.int16, np.uint8, np.uint32, np.intp]


def positions_for(data, b, l):
    """(L,) or (B, L) positions: a range from a drawn start, or random integers."""
    per_sequence = b > 0 and data.draw(st.booleans(), label="per sequence")
    shape = (b, l) if per_sequence else (l,)
    dtype = np.dtype(data.draw(st.sampled_from(POSITION_DTYPES), label="positions dtype"))
    info = np.iinfo(dtype)
    # beyond int32's range: tests/hostile_cases.py (a child process: index overflow crashes)
    hi = min(int(info.max), 2**31 - 1) - l
    lo = max(int(info.min), -2**31)
    if data.draw(st.booleans(), label="range"):
        start = data.draw(st.sampled_from([0, 0, 1, 5, 1000, 2**20, hi, lo]), label="start")
        start = min(max(start, lo), max(hi, lo))
        pos = np.broadcast_to(np.arange(start, start + l, dtype=np.int64), shape)
    else:
        seed = data.draw(st.integers(0, 2**32 - 1))
        pos = np.random.default_rng(seed).integers(lo, max(hi, lo) + 1, shape)
    order = data.draw(st.sampled_from("CCF"), label="positions order")
    return np.array(pos, dtype=dtype, order=order)


@FUZZ
@given(data=st.data())
def test_matches_reference_any_layout(isa, data):
    b, h = data.draw(LEADING, label="B"), data.draw(LEADING, label="H")
    l = data.draw(st.sampled_from([1, 2, 3, 5, 8, 13, 20, 0]), label="L")
    d = data.draw(st.one_of(st.integers(0, 10), st.sampled_from([15, 16, 17, 18, 33, 34, 64])),
                  label="D")
    rot = None  # the whole head, which must then be even: an odd D rotates part of it
    if d >= 2 and (d % 2 or data.draw(st.booleans(), label="partial")):
        rot = 2 * data.draw(st.integers(1, d // 2), label="rotary_dim / 2")
    if d == 1:
        with pytest.raises(ValueError, match=r"rope: rotary_dim must be even and in \[2, 1\]"):
            fastattn.rope(np.zeros((1, 1, 1, 1), np.float32), np.arange(1))
        return
    style = data.draw(st.sampled_from(STYLES), label="style")
    scaling = SCALINGS[data.draw(st.sampled_from(list(SCALINGS)), label="scaling")]
    theta = data.draw(st.sampled_from([10000.0, 10000.0, 500.0, 1e6, 1.0, 1e30]), label="theta")
    assume(not (theta == 1.0 and scaling and scaling.get("rope_type") == "yarn"))  # test below
    pos = positions_for(data, b, l)
    # Fortran-ordered (B, L) positions: test_fortran_ordered_positions below
    assume(pos.ndim == 1 or pos.flags.c_contiguous)
    x = values(data, (b, h, l, d))
    mode = data.draw(st.sampled_from(OUT_MODES), label="out mode")
    gx = place(data, x, writable=mode == "in_place")
    x = np.array(gx.view)
    kw = dict(theta=theta, style=style, rotary_dim=rot, scaling=scaling)

    if scaling and scaling.get("type") == "dynamic" and (d if rot is None else rot) == 2 and x.size:
        with pytest.raises(ValueError, match=r"rope: dynamic scaling needs rotary_dim > 2"):
            fastattn.rope(x, pos, **kw)
        return
    plain = fastattn.rope(x.copy(), pos, **kw)
    if x.size:
        check(plain, x, pos.astype(np.int64), style, d if rot is None else rot, scaling, theta)
    run_checked(data, mode, lambda out: fastattn.rope(gx.view, pos, out=out, **kw), x.shape,
                inputs=[gx], in_place=gx, expected=plain)


@FUZZ
@given(data=st.data())
def test_errors(isa, data):
    b, h, l = (data.draw(st.integers(1, 3)) for _ in range(3))
    d = 2 * data.draw(st.integers(1, 4))
    x = values(data, (b, h, l, d))
    pos = np.arange(l)
    bad = data.draw(st.sampled_from(["kind", "out kind", "positions kind", "positions shape",
                                     "rotary_dim", "theta", "style", "ndim"]))
    if bad == "kind":
        bad_kind_call(data, lambda a: fastattn.rope(a, pos), x, "rope", "x")
    elif bad == "out kind":
        bad_kind_call(data, lambda o: fastattn.rope(x, pos, out=o), x, "rope", "out")
    elif bad == "positions kind":
        p = data.draw(st.sampled_from([pos.astype(np.float32), pos.astype(np.float64),
                                       pos.astype(bool), pos.tolist()]))
        with pytest.raises(TypeError, match=r"rope: positions must"):
            fastattn.rope(x, p)
    elif bad == "positions shape":
        p = data.draw(st.sampled_from([np.arange(l + 1), np.zeros((b + 1, l), int),
                                       np.zeros((1, 1, l), int), np.array(0)]))
        with pytest.raises(ValueError, match=r"rope: positions has shape"):
            fastattn.rope(x, p)
    elif bad == "rotary_dim":
        r = data.draw(st.sampled_from([0, -2, 1, d - 1, d + 2, 2**62]))
        with pytest.raises(ValueError, match=r"rope: rotary_dim must be even"):
            fastattn.rope(x, pos, rotary_dim=r)
    elif bad == "theta":
        t = data.draw(st.sampled_from([0.0, -1.0, float("nan"), float("inf")]))
        with pytest.raises(ValueError, match=r"rope: theta must be finite and > 0"):
            fastattn.rope(x, pos, theta=t)
    elif bad == "style":
        with pytest.raises(ValueError, match=r"rope: style must be 'half' or 'interleaved'"):
            fastattn.rope(x, pos, style=data.draw(st.sampled_from(["neox", "", "HALF"])))
    else:
        with pytest.raises(ValueError, match=r"rope: x must be 4-D"):
            fastattn.rope(x[0], pos)


@pytest.mark.parametrize("style,positions", [("half", [[0, 1, 2], [7, 3, 9]]),
                                             ("interleaved", [[-5, 3, 1], [1, 2, 0]])])
def test_fortran_ordered_positions(isa, style, positions):
    # Found by the fuzz test above (np.array(np.broadcast_to(...)) is Fortran-ordered): the
    # cos / sin rows gathered (half) or computed (interleaved, positions outside the cached
    # table) for such positions follow the index's order, and for one rotated pair the
    # (B, L, width) table is then not C-contiguous.
    x = np.ones((2, 1, 3, 2), np.float32)
    pos = np.asfortranarray(positions)
    np.testing.assert_array_equal(fastattn.rope(x, pos, style=style),
                                  fastattn.rope(x, np.ascontiguousarray(pos), style=style))


def test_yarn_with_theta_one(isa):
    # Found by the fuzz test above. theta = 1 passes the check (finite and > 0); the op must
    # then give a finite result or refuse theta with ValueError.
    x = np.ones((1, 1, 3, 4), np.float32)
    try:
        y = fastattn.rope(x, np.arange(3), theta=1.0, scaling=SCALINGS["yarn"])
    except ValueError:
        return
    assert np.all(np.isfinite(y))

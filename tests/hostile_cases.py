"""Hostile inputs that could crash the process rather than fail a test: every entry point of
the private extension called with valid arguments bent one or two ways (shapes, ranks, dtypes,
strides, misaligned and read-only views, broadcast, None, lists, integer and float extremes),
and the public ops with integer extremes (attention windows up to 2**80, rope positions up to
2**62). Index arithmetic that overflows turns into out-of-bounds reads and writes, i.e. a
segfault, not an assertion.

Not collected by pytest on its own (the name does not start with test_):
tests/test_fuzz_hostile.py runs this module in a child process, so that a crash is a failing
test naming the input (``note`` writes each case to $FASTATTN_FUZZ_LOG before the call) rather
than a dead test run. Run it directly to debug: ``pytest tests/hostile_cases.py``.
"""
import dataclasses
import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fastattn
from fastattn import _core
from fuzzing import (FUZZ, MISALIGNED, Guarded, contiguous_layout, drawn_threads, layouts,
                     values)

_LOG = os.environ.get("FASTATTN_FUZZ_LOG")


def describe(x) -> str:
    if isinstance(x, np.ndarray):
        return (f"ndarray(shape={x.shape}, dtype={x.dtype.str}, strides={x.strides}, "
                f"aligned={x.flags.aligned}, writeable={x.flags.writeable})")
    if isinstance(x, list):
        return f"list(len={len(x)})"
    return repr(x)


def note(name: str, args) -> None:
    """Records the call about to be made, so that a crash can be reported with its input."""
    if _LOG:
        with open(_LOG, "w") as f:
            f.write(f"_core.{name}(" + ", ".join(describe(a) for a in args) + ")\n")


# -- valid calls of every _core entry point ---------------------------------------------------

class Call:
    """A call under construction: ``arr`` adds a float32 (or bool) array argument in a drawn
    layout inside a sentinel-guarded buffer; ``guards`` are checked after the call."""

    def __init__(self, data):
        self.data, self.args, self.guards = data, [], []

    def array(self, shape, *, writable=False, dtype=np.float32, contiguous=False):
        """A new guarded array (not yet an argument)."""
        x = values(self.data, shape)
        if dtype == np.bool_:
            x = x > 0
        if contiguous:  # C-contiguous, between guard rows (a pad on the first axis)
            layout = contiguous_layout(len(shape))
            if shape:
                layout = dataclasses.replace(layout, pads=(1,) + layout.pads[1:])
        else:
            layout = self.data.draw(layouts(len(shape), writable=writable, misaligned=False))
        g = Guarded(layout, shape, x)
        self.guards.append(g)
        return g.view

    def arr(self, shape, **kw):
        self.args.append(self.array(shape, **kw))

    def optional(self, shape, **kw):
        """An optional array argument: the array or None (drawn)."""
        self.args.append(self.array(shape, **kw) if self.data.draw(st.booleans()) else None)

    def val(self, v):
        self.args.append(v)


def small(data, lo=0, hi=6):
    return data.draw(st.integers(lo, hi))


def build(data, name):
    """A valid call of ``_core.<name>`` (argument order as the binding declares)."""
    c = Call(data)
    if name == "softmax":
        r, n = small(data), small(data, 0, 40)
        c.arr((r, n), contiguous=True), c.arr((r, n), writable=True, contiguous=True)
        c.val(data.draw(st.booleans()))
    elif name in ("layer_norm", "rms_norm"):
        r, n = small(data), small(data, 0, 40)
        c.arr((r, n), contiguous=True)
        c.optional((n,), contiguous=True)
        if name == "layer_norm":
            c.optional((n,), contiguous=True)
        c.val(1e-5)
        c.arr((r, n), writable=True, contiguous=True)
    elif name in ("activation", "vector_math"):
        kinds = ["relu", "gelu", "gelu_tanh", "silu"] if name == "activation" else ["exp", "erfc"]
        shape = tuple(small(data) for _ in range(small(data, 0, 3)))
        c.val(data.draw(st.sampled_from(kinds)))
        c.arr(shape, contiguous=True), c.arr(shape, writable=True, contiguous=True)
    elif name == "swiglu":
        shape = tuple(small(data) for _ in range(small(data, 0, 3)))
        c.arr(shape, contiguous=True), c.arr(shape, contiguous=True)
        c.arr(shape, writable=True, contiguous=True)
    elif name in ("matmul", "matmul_2d"):
        m, n, k = small(data, 0, 20), small(data, 0, 20), small(data, 0, 20)
        batch = () if name == "matmul_2d" else tuple(small(data, 1, 3)
                                                     for _ in range(small(data, 0, 2)))
        if name == "matmul_2d":
            c.arr((m, k)), c.arr((k, n)), c.val(False), c.val(False)
            c.optional((n,), contiguous=True)
            c.val(data.draw(st.sampled_from([None, "relu", "gelu", "gelu_tanh", "silu"])))
            c.optional((m, n))
            c.optional((m, n), writable=True)
        else:
            c.arr(batch + (m, k)), c.arr(batch + (k, n)), c.arr(batch + (m, n), writable=True)
            c.optional((n,), contiguous=True)
            c.val(data.draw(st.sampled_from([None, "relu", "gelu", "gelu_tanh", "silu"])))
            c.optional(batch + (m, n))
    elif name == "matmul_pack_b":
        k, n = small(data, 0, 40), small(data, 0, 40)
        nr = _core.matmul_panel_width()
        # writable: no broadcast layout (issue 16 case 6: pack_b overflows for those)
        c.arr((k, n), writable=True), c.arr((-(-n // nr) * k * nr,), writable=True, contiguous=True)
    elif name == "matmul_packed":
        m, n, k = small(data, 0, 20), small(data, 0, 40), small(data, 0, 40)
        nr = _core.matmul_panel_width()
        c.arr((m, k)), c.arr((-(-n // nr) * k * nr,), contiguous=True), c.val(k), c.val(n)
        c.arr((m, n), writable=True)
        c.optional((n,), contiguous=True)
        c.val(data.draw(st.sampled_from([None, "relu", "silu"])))
        c.optional((m, n))
    elif name == "matmul_lowp":
        # the weight and scales in a format's storage (random bits: any pattern is a weight)
        m, n, k = small(data, 0, 20), small(data, 0, 40), small(data, 0, 70)
        fmt = data.draw(st.sampled_from(["bfloat16", "float16", "q8", "q4"]))
        kp = -(-k // 32) * 32
        shape, dtype = {"bfloat16": ((n, k), np.uint16), "float16": ((n, k), np.uint16),
                        "q8": ((n, kp), np.int8), "q4": ((n, kp // 2), np.uint8)}[fmt]
        bits = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
        c.arr((m, k)), c.val(fmt)
        c.val(bits.integers(0, 256, (n, shape[1] * np.dtype(dtype).itemsize), np.uint8)
              .view(dtype))
        c.val(None if fmt in ("bfloat16", "float16") else
              bits.uniform(-1, 1, (n, kp // 32)).astype(np.float16))
        c.val(k), c.val(n)
        c.arr((m, n), writable=True)
        c.optional((n,), contiguous=True)
        c.val(data.draw(st.sampled_from([None, "relu", "silu"])))
        c.optional((m, n))
    elif name == "attention":
        b, hkv, lq, lk, d = (small(data, 0, 4), small(data, 1, 3), small(data, 0, 9),
                             small(data, 0, 9), small(data, 0, 17))
        rel = data.draw(st.booleans())  # relative-position tables: keys on a kh x kw grid
        if rel:
            kh, kw = small(data, 0, 3), small(data, 1, 4)
            lk = kh * kw
        hq = hkv * small(data, 1, 2)
        c.arr((b, hq, lq, d)), c.arr((b, hkv, lk, d)), c.arr((b, hkv, lk, d))
        c.arr((b, hq, lq, d), writable=True)
        mask = data.draw(st.sampled_from([None, np.bool_, np.float32]))
        c.arr((b, hq, lq, lk), dtype=mask) if mask else c.val(None)
        c.val(data.draw(st.booleans())), c.val(data.draw(st.sampled_from([0, 1, 3]))), c.val(0.5)
        c.optional((b, hq, lq, lk), writable=True, contiguous=True)
        if rel:
            c.arr((b, hq, lq, kh)), c.arr((b, hq, lq, kw))
    elif name == "rope":
        b, h, l, d = small(data, 0, 3), small(data, 0, 3), small(data, 0, 9), 2 * small(data, 0, 8)
        rot = 2 * small(data, 0, d // 2)
        interleaved = data.draw(st.booleans())
        width = rot if interleaved else rot // 2
        tb = data.draw(st.sampled_from([1, b]))
        c.arr((b, h, l, d), contiguous=True)
        c.arr((tb, l, width), contiguous=True), c.arr((tb, l, width), contiguous=True)
        c.arr((b, h, l, d), writable=True, contiguous=True), c.val(rot), c.val(interleaved)
    elif name in ("kv_append", "kv_attend"):
        layers, b, h, s, d = (small(data, 1, 2), small(data, 1, 2), small(data, 1, 2),
                              small(data, 1, 12), small(data, 1, 9))
        dtype = data.draw(st.sampled_from(["float32", "float16", "bfloat16"]))
        store = (layers, b, h, s, d)
        if dtype == "float32":
            c.arr(store, writable=True, contiguous=True)
            c.arr(store, writable=True, contiguous=True)
        else:
            # 16-bit stores: a guarded float32 buffer seen as uint16, head_dim 2d
            for _ in range(2):
                c.val(c.array(store, writable=True, contiguous=True).view(np.uint16))
            d = 2 * d
        c.val(small(data, 0, layers - 1))
        t = small(data, 1, s)
        if name == "kv_append":
            c.arr((b, h, t, d), contiguous=True), c.arr((b, h, t, d), contiguous=True)
            c.val(small(data, 0, 30))
        else:
            hq = h * small(data, 1, 2)
            c.arr((b, hq, t, d), contiguous=True)
            c.arr((b, hq, t, d), writable=True, contiguous=True)
            length = t + small(data, 0, s - t)
            c.val(length), c.val(data.draw(st.sampled_from([0, 1, s - t + 1]))), c.val(0.5)
        c.val(dtype)
    elif name in ("kv_to_float32", "kv_from_float32"):
        shape = tuple(small(data, 0, 5) for _ in range(small(data, 0, 3))) + (small(data, 0, 9),)
        half = shape[:-1] + (2 * shape[-1],)   # uint16 view of a guarded float32 array
        def bits(**kw):
            return c.array(shape, contiguous=True, **kw).view(np.uint16)
        if name == "kv_to_float32":
            c.val(bits()), c.arr(half, writable=True, contiguous=True)
        else:
            c.arr(half, contiguous=True), c.val(bits(writable=True))
        c.val(data.draw(st.sampled_from(["float16", "bfloat16"])))
    elif name == "resample":
        p, h, w = small(data, 0, 3), small(data, 1, 9), small(data, 1, 9)
        oh, ow, ky, kx = small(data, 0, 9), small(data, 0, 9), small(data, 0, 4), small(data, 0, 4)
        reduce = data.draw(st.sampled_from(["sum", "max"]))
        c.arr((p, h, w), contiguous=True), c.arr((p, oh, ow), writable=True, contiguous=True)
        for n, size, k in ((oh, h, ky), (ow, w, kx)):
            seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
            c.val(np.random.default_rng(seed).integers(-1, size, (k, n), dtype=np.int64))
            c.arr((k, n), contiguous=True) if reduce == "sum" else c.val(None)
        c.val(reduce)
    elif name in ("conv2d", "conv_transpose2d"):
        n, g = small(data, 0, 2), small(data, 1, 2)
        c_in, per_out = g * small(data, 0 if name == "conv2d" else 1, 3), small(data, 1, 3)
        kh, kw = small(data, 1, 3), small(data, 1, 3)
        sh, sw, dh, dw = (small(data, 1, 2) for _ in range(4))
        h, w = small(data, 1, 9), small(data, 1, 9)
        if name == "conv2d":
            pads = [small(data, 0, 2) for _ in range(4)]
            h = max(h, dh * (kh - 1) + 1 - pads[0] - pads[1])
            w = max(w, dw * (kw - 1) + 1 - pads[2] - pads[3])
            oh = (h + pads[0] + pads[1] - dh * (kh - 1) - 1) // sh + 1
            ow = (w + pads[2] + pads[3] - dw * (kw - 1) - 1) // sw + 1
            c.arr((n, c_in, h, w), contiguous=True)
            c.arr((g * per_out, c_in // g, kh, kw), contiguous=True)
            c.optional((g * per_out,), contiguous=True)
            c.optional((n, g * per_out, oh, ow), contiguous=True)
            c.arr((n, g * per_out, oh, ow), writable=True, contiguous=True)
            for p in (sh, sw, *pads, dh, dw, g):
                c.val(p)
            c.val(data.draw(st.sampled_from([None, "relu", "gelu", "gelu_tanh", "silu"])))
        else:
            ph, pw = small(data, 0, 1), small(data, 0, 1)
            oph = small(data, 0, max(sh, dh) - 1)
            opw = small(data, 0, max(sw, dw) - 1)
            if (h - 1) * sh + dh * (kh - 1) < 2 * ph or (w - 1) * sw + dw * (kw - 1) < 2 * pw:
                ph = pw = 0  # the output would be empty
            oh = (h - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
            ow = (w - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
            c.arr((n, c_in, h, w), contiguous=True)
            c.arr((c_in, per_out, kh, kw), contiguous=True)
            c.optional((g * per_out,), contiguous=True)
            c.arr((n, g * per_out, oh, ow), writable=True, contiguous=True)
            for p in (sh, sw, ph, pw, oph, opw, dh, dw, g):
                c.val(p)
    return c


ENTRY_POINTS = ["softmax", "layer_norm", "rms_norm", "activation", "vector_math", "swiglu",
                "matmul", "matmul_2d", "matmul_pack_b", "matmul_packed", "matmul_lowp",
                "attention", "rope", "kv_append", "kv_attend", "kv_to_float32",
                "kv_from_float32", "resample", "conv2d", "conv_transpose2d"]

INT_EXTREMES = [-1, -2, 2**31, 2**31 - 1, 2**32 + 1, 2**62, 2**63 - 1, -2**63, 2**64]
FLOAT_EXTREMES = [float("nan"), float("inf"), -float("inf"), 0.0, -0.0, 1e39, -1e39, 5e-324]



def bent_array(data, x: np.ndarray, call: Call, name: str, index: int):
    """x bent one way: another shape, rank or dtype, a strided, misaligned, read-only or
    broadcast view, None, a list."""
    ways = ["shape", "rank", "dtype", "strided", "misaligned", "read-only", "broadcast", "none",
            "list", "empty"]
    no_broadcast = x.flags.writeable or name == "matmul_pack_b"
    if name == "matmul_pack_b":
        ways.remove("broadcast")
    if not MISALIGNED:
        ways.remove("misaligned")
    way = data.draw(st.sampled_from(ways), label="bend")
    shape = list(x.shape)
    if way == "shape" and shape:
        a = data.draw(st.integers(0, len(shape) - 1))
        shape[a] = max(shape[a] + data.draw(st.sampled_from([-1, 1, 2, 7])), 0)
        return call.array(tuple(shape), writable=no_broadcast)
    if way == "rank":
        shape = shape[1:] if shape and data.draw(st.booleans()) else [1] + shape
        return np.zeros(shape, x.dtype)
    if way == "dtype":
        return x.astype(data.draw(st.sampled_from(["float64", "float16", "int32", ">f4", "bool",
                                                    "complex64"])))
    if way in ("strided", "misaligned"):
        layout = data.draw(layouts(x.ndim, writable=no_broadcast, misaligned=False))
        if way == "misaligned":
            layout = dataclasses.replace(layout, byte_offset=data.draw(st.integers(1, 3)))
        g = Guarded(layout, x.shape, np.array(x))
        call.guards.append(g)
        return g.view
    if way == "read-only":
        y = np.array(x)
        y.flags.writeable = False
        return y
    if way == "broadcast" and x.size:
        return np.broadcast_to(np.array(x).reshape(-1)[:1].reshape((1,) * x.ndim), x.shape)
    if way == "list":
        return np.array(x).tolist()
    if way == "empty":
        return np.zeros((0,) * max(x.ndim, 1), x.dtype)
    return None


@pytest.mark.parametrize("name", ENTRY_POINTS)
@FUZZ
@given(data=st.data())
def test_core_entry_points_never_crash(isa, name, data):
    # The private extension re-checks dtype, shape and strides itself (docs/ops.md): however
    # its arguments are bent, a call returns or raises TypeError / ValueError, and writes
    # nothing outside its output views.
    call = build(data, name)
    for _ in range(data.draw(st.integers(0, 2), label="bends")):
        i = data.draw(st.integers(0, len(call.args) - 1), label="argument")
        a = call.args[i]
        if isinstance(a, np.ndarray):
            call.args[i] = bent_array(data, a, call, name, i)
        elif isinstance(a, bool):
            call.args[i] = data.draw(st.sampled_from([not a, 0, 1, None, "x"]))
        elif isinstance(a, int):
            call.args[i] = data.draw(st.sampled_from(INT_EXTREMES))
        elif isinstance(a, float):
            call.args[i] = data.draw(st.sampled_from(FLOAT_EXTREMES))
        elif isinstance(a, str):
            call.args[i] = data.draw(st.sampled_from(["", "tanh", "gelu ", None, 5]))
        elif a is None:
            call.args[i] = data.draw(st.sampled_from([np.zeros(3, np.float32), 0, "x"]))
    note(name, call.args)
    with drawn_threads(data):
        try:
            getattr(_core, name)(*call.args)
        except (TypeError, ValueError):
            pass
    for g in call.guards:
        g.check()


# -- the public ops with integer extremes -----------------------------------------------------

@FUZZ
@given(data=st.data())
def test_attention_huge_windows(isa, data):
    # |p - j| < Lq + Lk for every query position p and key j: a window of Lq + Lk or more
    # excludes nothing, so the result is the same bits as no window (p - W + 1 and p + W
    # overflowed int64 once: issue 16 case 1).
    lq, lk = data.draw(st.integers(1, 70)), data.draw(st.sampled_from([1, 5, 40, 300, 1100]))
    hkv = data.draw(st.integers(1, 2))
    q = values(data, (1, 2 * hkv, lq, 16))
    k, v = values(data, (1, hkv, lk, 16)), values(data, (1, hkv, lk, 16))
    causal = data.draw(st.booleans())
    window = data.draw(st.sampled_from([lq + lk, lq + lk + 1, 2**31 - 1, 2**31, 2**32, 2**62,
                                        2**63 - 1, 2**63, 2**64, 2**80]))
    weights = lq * lk <= 2000 and data.draw(st.booleans())
    note("attention", [q, k, v, f"causal={causal}", f"window={window}"])
    with drawn_threads(data):
        got = fastattn.attention(q, k, v, causal=causal, window=window, return_weights=weights)
    expected = fastattn.attention(q, k, v, causal=causal, return_weights=weights)
    for g, e in zip(got, expected) if weights else [(got, expected)]:
        assert np.array_equal(g, e)


@FUZZ
@given(data=st.data())
def test_rope_extreme_positions(isa, data):
    # Positions anywhere in int64's range (tables computed per call beyond the cache) never
    # crash; up to 2**40 the result is within tests/test_rope.py's bound.
    from test_rope import check
    b, l = data.draw(st.integers(1, 2)), data.draw(st.integers(1, 9))
    d = 2 * data.draw(st.integers(1, 9))
    x = values(data, (b, 2, l, d))
    start = data.draw(st.sampled_from([2**31 - 5, 2**32, 2**40 - 9, -2**40, 2**62, -2**62,
                                       2**63 - 10, -2**63]))
    pos = np.arange(l, dtype=np.int64) + np.int64(start)
    style = data.draw(st.sampled_from(["half", "interleaved"]))
    note("rope", [x, f"positions from {start}", style])
    with drawn_threads(data):
        with np.errstate(all="ignore"):
            try:
                y = fastattn.rope(x, pos, style=style)
            except ValueError:
                return
    if abs(start) <= 2**40:
        check(y, x, pos, style, d)

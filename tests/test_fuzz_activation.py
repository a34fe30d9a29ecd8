"""Property-based tests of gelu (exact, tanh), silu, relu, swiglu (tests/fuzzing.py): random
shapes (0-d, 0 and 1 sizes included), layouts, out= modes (in place on either swiglu input),
thread counts, inputs from 1e-30 to 1e30 with NaN / inf, on every ISA path. The result must
equal the float64 reference within the bounds of tests/test_activation.py, bit for bit the
result of the same call on contiguous copies; wrong kinds of argument raise TypeError."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fastattn
from fastattn import reference
from fuzzing import (FUZZ, OUT_MODES, assert_close, bad_kind_call, place, run_checked, shapes,
                     values)
from test_activation import gelu_tolerance

SCALES = (1.0, 3.0, 3.0, 10.0, 30.0, 1e-30, 1e30)


# The bounds of tests/test_activation.py, as functions of x (float64) and the reference; the
# 1e-37 floor is for results that underflow below the smallest normal float.
def gelu_bound(x, ref):
    return gelu_tolerance(x) * np.abs(ref) + 1e-37


def gelu_tanh_bound(x, ref):
    u = np.abs(x) * 1.6 * (1 + 0.045 * x ** 2)
    # the float64 reference's own 1 + tanh(u) cancels for u << 0: |x| 1.1e-16 absolute
    return (6e-7 + 1.5e-7 * u) * np.abs(ref) + 1.2e-16 * np.abs(x) + 1e-37


def silu_bound(x, ref):
    return (6e-7 + 1.2e-7 * np.abs(x)) * np.abs(ref) + 1e-37


# name: (fastattn call on the inputs, reference on float64 inputs, bound(x, ref), inputs)
OPS = {
    "gelu": (lambda x, out=None: fastattn.gelu(x, out=out), reference.gelu, gelu_bound),
    "gelu_tanh": (lambda x, out=None: fastattn.gelu(x, "tanh", out=out),
                  lambda x: reference.gelu(x, approximate="tanh"), gelu_tanh_bound),
    "silu": (lambda x, out=None: fastattn.silu(x, out=out), reference.silu, silu_bound),
    "relu": (lambda x, out=None: fastattn.relu(x, out=out), reference.relu,
             lambda x, ref: 0.0),
    "swiglu": (lambda g, u, out=None: fastattn.swiglu(g, u, out=out), reference.swiglu,
               lambda g, ref: (6e-7 + 1.2e-7 * np.abs(g) + 1.2e-7) * np.abs(ref) + 1e-37),
}


@pytest.mark.parametrize("op", OPS)
@FUZZ
@given(data=st.data())
def test_matches_reference_any_layout(isa, op, data):
    fn, ref_fn, bound = OPS[op]
    shape = shapes(data, 0, 4)
    mode = data.draw(st.sampled_from(OUT_MODES), label="out mode")
    writable = mode == "in_place"
    n_inputs = 2 if op == "swiglu" else 1
    guarded = [place(data, values(data, shape, scales=SCALES, specials=True), writable=writable)
               for _ in range(n_inputs)]
    inputs = [np.array(g.view) for g in guarded]
    plain = fn(*[a.copy() for a in inputs])
    with np.errstate(all="ignore"):  # inf * 0 in the reference, as in the kernel: NaN
        expected = ref_fn(*[a.astype(np.float64) for a in inputs])
        assert_close(plain, expected, bound(inputs[0].astype(np.float64), expected))
    in_place = guarded[data.draw(st.integers(0, n_inputs - 1), label="in place on")]
    run_checked(data, mode, lambda out: fn(*[g.view for g in guarded], out=out), shape,
                inputs=guarded, in_place=in_place, expected=plain)


@pytest.mark.parametrize("op", OPS)
@FUZZ
@given(data=st.data())
def test_errors(isa, op, data):
    fn, _, _ = OPS[op]
    shape = shapes(data, 0, 3, max_size=200)
    x = values(data, shape)
    name = "gate" if op == "swiglu" else "x"
    public = "gelu" if op == "gelu_tanh" else op
    bad = data.draw(st.sampled_from(["kind", "out kind", "second kind", "shape"]
                                    if op == "swiglu" else ["kind", "out kind"]))
    args = (x, x) if op == "swiglu" else (x,)
    if bad == "kind":
        bad_kind_call(data, lambda a: fn(a, *args[1:]), x, public, name)
    elif bad == "second kind":
        bad_kind_call(data, lambda a: fn(x, a), x, public, "up")
    elif bad == "shape":
        other = np.zeros(shape + (2,), np.float32)
        with pytest.raises(ValueError, match=r"swiglu: up has shape"):
            fn(x, other)
    else:
        bad_kind_call(data, lambda o: fn(*args, out=o), x, public, "out")


@FUZZ
@given(data=st.data())
def test_gelu_approximate_must_be_known(isa, data):
    approximate = data.draw(st.sampled_from(["fast", "", "TANH", "erf", None, 1]))
    with pytest.raises(ValueError, match=r"gelu: approximate must be 'none' or 'tanh'"):
        fastattn.gelu(np.zeros(3, np.float32), approximate=approximate)

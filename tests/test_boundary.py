"""The NumPy boundary: errors name the argument, expected and given; nothing crashes; strides,
empty arrays, 0-d input and out= behave as the README's "The NumPy boundary" and docs/ops.md
say."""
import numpy as np
import pytest

import fastattn

ROW_OPS = [
    ("softmax", lambda x, **kw: fastattn.softmax(x, **kw)),
    ("log_softmax", lambda x, **kw: fastattn.log_softmax(x, **kw)),
    ("layer_norm", lambda x, **kw: fastattn.layer_norm(x, **kw)),
    ("rms_norm", lambda x, **kw: fastattn.rms_norm(x, **kw)),
]
ELEMENTWISE = [
    ("gelu", lambda x, **kw: fastattn.gelu(x, **kw)),
    ("silu", lambda x, **kw: fastattn.silu(x, **kw)),
    ("relu", lambda x, **kw: fastattn.relu(x, **kw)),
    ("swiglu", lambda x, **kw: fastattn.swiglu(x, x, **kw)),
]
ALL_OPS = ROW_OPS + ELEMENTWISE


@pytest.mark.parametrize("name,op", ALL_OPS)
@pytest.mark.parametrize("bad", [np.float64, np.float16, np.int32, np.bool_, np.complex64])
def test_wrong_dtype_is_type_error(name, op, bad):
    with pytest.raises(TypeError, match=rf"{name}: (x|gate) must be float32, got"):
        op(np.zeros((2, 3), bad))


@pytest.mark.parametrize("name,op", ALL_OPS)
def test_lists_are_refused_with_type_error(name, op):
    with pytest.raises(TypeError, match=r"must be a numpy.ndarray of float32, got list"):
        op([[1.0, 2.0]])


@pytest.mark.parametrize("name,op", ALL_OPS)
def test_out_validation(name, op):
    x = np.ones((3, 4), np.float32)
    with pytest.raises(ValueError, match=rf"{name}: out has shape \(3, 5\), expected \(3, 4\)"):
        op(x, out=np.empty((3, 5), np.float32))
    with pytest.raises(TypeError, match=rf"{name}: out must be float32, got float64"):
        op(x, out=np.empty((3, 4), np.float64))
    ro = np.empty((3, 4), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match=rf"{name}: out is read-only"):
        op(x, out=ro)
    big = np.ones((3, 5), np.float32)
    with pytest.raises(ValueError, match=rf"{name}: out overlaps"):
        op(big[:, :4], out=big[:, 1:])


@pytest.mark.parametrize("name,op", ALL_OPS)
def test_out_non_contiguous_and_in_place_really_mutate(name, op, rng):
    x = rng.standard_normal((5, 16)).astype(np.float32)
    expected = op(x.copy())
    holder = np.zeros((5, 32), np.float32)
    out = holder[:, ::2]  # strided out: written through a temporary
    assert op(x, out=out) is out
    np.testing.assert_array_equal(holder[:, ::2], expected)
    assert np.all(holder[:, 1::2] == 0)
    y = x.copy()
    op(y, out=y)
    np.testing.assert_array_equal(y, expected)


@pytest.mark.parametrize("name,op", ALL_OPS)
def test_strided_and_negative_stride_views(name, op, rng):
    base = rng.standard_normal((8, 40)).astype(np.float32)
    for view in (base[::2, 3:30], base[::-1, ::-1], base[:, ::3], base.T, base[1:7][::-2, 5:]):
        np.testing.assert_array_equal(op(view), op(np.ascontiguousarray(view)))


@pytest.mark.parametrize("name,op", ALL_OPS)
def test_empty_arrays(name, op):
    for shape in [(0, 5), (3, 0), (0,), (2, 0, 4)]:
        y = op(np.zeros(shape, np.float32))
        assert y.shape == shape and y.dtype == np.float32


@pytest.mark.parametrize("name,op", ROW_OPS)
def test_zero_d_is_value_error_for_row_ops(name, op):
    with pytest.raises(ValueError, match=rf"{name}: x must have at least 1 dimension"):
        op(np.array(1.0, np.float32))


def test_axis_errors():
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match=r"softmax: axis 2 is out of range for a 2-D array"):
        fastattn.softmax(x, axis=2)
    with pytest.raises(TypeError, match=r"softmax: axis must be an int, got float"):
        fastattn.softmax(x, axis=1.0)


def test_norm_parameter_errors():
    x = np.zeros((4, 64), np.float32)
    with pytest.raises(ValueError,
                       match=r"layer_norm: weight has shape \(63,\), expected \(64,\) to match x's last axis"):
        fastattn.layer_norm(x, np.ones(63, np.float32))
    with pytest.raises(TypeError, match=r"layer_norm: bias must be float32, got float64"):
        fastattn.layer_norm(x, None, np.ones(64))
    with pytest.raises(ValueError, match=r"rms_norm: eps must be finite and >= 0, got -1"):
        fastattn.rms_norm(x, eps=-1)
    with pytest.raises(ValueError, match=r"layer_norm: eps must be finite and >= 0, got nan"):
        fastattn.layer_norm(x, eps=float("nan"))
    with pytest.raises(ValueError, match=r"gelu: approximate must be 'none' or 'tanh', got 'fast'"):
        fastattn.gelu(x, approximate="fast")
    with pytest.raises(ValueError, match=r"swiglu: up has shape \(4, 63\), expected \(4, 64\)"):
        fastattn.swiglu(x, np.zeros((4, 63), np.float32))


def test_nan_and_inf_inputs_never_crash():
    x = np.array([[np.nan, np.inf, -np.inf, 1.0]] * 3, np.float32)
    for _, op in ALL_OPS:
        op(x)


def test_huge_last_axis():
    x = np.ones((2, 1 << 20), np.float32)
    np.testing.assert_allclose(fastattn.softmax(x), 2.0 ** -20, rtol=1e-6)
    np.testing.assert_array_equal(fastattn.layer_norm(x), 0.0)
    np.testing.assert_allclose(fastattn.rms_norm(x), 1.0, rtol=1e-6)


def test_private_core_checks_its_arguments_too():
    # Even a direct call into the extension must not read or write out of bounds.
    from fastattn import _core
    x = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match=r"rows must be contiguous"):
        _core.softmax(np.zeros((3, 8), np.float32)[:, ::2], x, False)
    with pytest.raises(ValueError, match=r"out has shape \(3, 5\), expected \(3, 4\)"):
        _core.softmax(x, np.zeros((3, 5), np.float32), False)
    with pytest.raises(TypeError):
        _core.softmax(x.astype(np.float64), x, False)
    with pytest.raises(ValueError, match=r"weight has shape \(3,\), expected \(4,\)"):
        _core.layer_norm(x, np.zeros(3, np.float32), None, 1e-5, x)
    with pytest.raises(ValueError, match=r"must be C-contiguous"):
        _core.activation("relu", x.T, x.T.copy())


@pytest.mark.parametrize("op", ["softmax", "log_softmax", "layer_norm", "rms_norm", "gelu",
                                "silu", "swiglu"])
def test_streamed_large_outputs_equal_small_calls(op, rng):
    # > 16 MiB of output is written with non-temporal stores on whole cache lines only
    # (core/row_writer.h); rows of 4099 floats and an out= shifted by one float put row starts
    # at every alignment. Each row is computed alone, so pieces below the threshold (ordinary
    # stores) must give the same bits.
    x = rng.standard_normal((1100, 4099)).astype(np.float32)
    up = rng.standard_normal(x.shape).astype(np.float32)

    def run(rows, out=None):
        if op == "swiglu":
            return fastattn.swiglu(x[rows], up[rows], out=out)
        return getattr(fastattn, op)(x[rows], out=out)

    whole = run(slice(None))
    pieces = np.concatenate([run(slice(i, i + 100)) for i in range(0, 1100, 100)])
    np.testing.assert_array_equal(whole, pieces)
    buf = np.empty(x.size + 1, np.float32)
    shifted = buf[1:].reshape(x.shape)
    run(slice(None), out=shifted)
    np.testing.assert_array_equal(shifted, whole)


# -- float32 is a type, not one dtype object (issue 16, case 3) --------------------------------

def _unpickled(x):
    """x through pickle: equal values and dtype, but a distinct dtype object."""
    import pickle
    return pickle.loads(pickle.dumps(x))


def _with_metadata(x):
    """x viewed with its dtype carrying metadata: equal, but another dtype object."""
    return x.view(np.dtype(x.dtype, metadata={"a": 1}))


def _every_public_op(convert, rng):
    """Runs every public op with its arrays passed through ``convert``; returns the results
    (each compared with the same call on the original arrays by the caller)."""
    f = lambda *shape: rng.standard_normal(shape).astype(np.float32)  # noqa: E731
    x, w = f(3, 8), f(8)
    q, k, v = f(1, 2, 5, 8), f(1, 1, 7, 8), f(1, 1, 7, 8)
    mask = np.tril(np.ones((5, 7), bool), 2)
    c = convert
    calls = {
        "softmax": lambda: fastattn.softmax(c(x), out=c(np.empty_like(x))),
        "log_softmax": lambda: fastattn.log_softmax(c(x)),
        "layer_norm": lambda: fastattn.layer_norm(c(x), c(w), c(w)),
        "rms_norm": lambda: fastattn.rms_norm(c(x), c(w), out=c(np.empty_like(x))),
        "gelu": lambda: fastattn.gelu(c(x)),
        "silu": lambda: fastattn.silu(c(x), out=c(np.empty_like(x))),
        "relu": lambda: fastattn.relu(c(x)),
        "swiglu": lambda: fastattn.swiglu(c(x), c(x)),
        "matmul": lambda: fastattn.matmul(c(x), c(x.T.copy()), bias=c(x[:, 0].copy()),
                                          residual=c(x[:, :3].copy()), activation="silu"),
        "matmul_batched": lambda: fastattn.matmul(c(q), c(k.transpose(0, 1, 3, 2).copy())),
        "matmul_out": lambda: fastattn.matmul(c(x), c(x.T.copy()), out=c(np.empty((3, 3),
                                                                             np.float32))),
        "PackedMatrix": lambda: fastattn.matmul(c(x), fastattn.PackedMatrix(c(x.T.copy()))),
        "attention": lambda: fastattn.attention(c(q), c(k), c(v), mask=c(mask), causal=True),
        "attention_weights": lambda: fastattn.attention(c(q), c(k), c(v), return_weights=True)[1],
        "rope": lambda: fastattn.rope(c(q), np.arange(5)),
    }
    results = {name: call() for name, call in calls.items()}
    cache = fastattn.KVCache(1, 1, 1, 8, 16)
    cache.append(0, c(k), c(v))
    results["KVCache.attend"] = cache.attend(0, c(q[:, :, -2:].copy()), out=c(np.empty(
        (1, 2, 2, 8), np.float32)))
    return results


@pytest.mark.parametrize("convert", [_unpickled, _with_metadata], ids=["pickle", "metadata"])
def test_every_op_takes_an_equal_float32_dtype_that_is_another_object(convert):
    # Bindings compared dtypes by identity: "softmax: x must be float32, got float32".
    plain = _every_public_op(lambda a: a, np.random.default_rng(16))
    other = _every_public_op(convert, np.random.default_rng(16))
    for name in plain:
        np.testing.assert_array_equal(other[name], plain[name], err_msg=name)


def test_byte_swapped_float32_is_still_refused():
    x = np.ones((2, 8), np.float32)
    swapped = x.astype(">f4")
    with pytest.raises(TypeError, match=r"softmax: x must be float32, got >f4"):
        fastattn.softmax(swapped)
    with pytest.raises(TypeError, match=r"float32"):
        fastattn.matmul(swapped, x.T.copy())
    from fastattn import _core
    for call in (lambda: _core.softmax(swapped, x.copy(), False),
                 lambda: _core.softmax(x, swapped.copy(), False),
                 lambda: _core.rms_norm(x, None, 1e-6, swapped.copy()),
                 lambda: _core.activation("relu", swapped, x.copy()),
                 lambda: _core.matmul(swapped, x.T.copy(), np.empty((2, 2), np.float32), None,
                                      None, None)):
        with pytest.raises(TypeError, match=r"must be float32 \(native byte order\), got >f4"):
            call()
    assert _core.matmul_2d(swapped, x.T.copy(), False, False, None, None, None, None) is None

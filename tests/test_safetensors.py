"""fastattn.io.safetensors: round trips (F32/F16/BF16 exact), zero-copy mapping, cross-checks
with the `safetensors` package, truncation at every cut and errors on access; every malformed
file that fails at open is in tests/test_malformed_files.py."""
import json
import mmap
import os
import struct

import numpy as np
import pytest

from fastattn.io import SafetensorsFile, bf16_to_float32, float32_to_bf16, save_safetensors

from conftest import _owner


def write_raw(path, header, data=b"", length=None):
    """A hand-made safetensors file: header (dict -> JSON, or bytes as they are) and data."""
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text) if length is None else length) + text + data)
    return str(path)


def bits(values) -> np.ndarray:
    return np.array(values, dtype=np.uint32).view(np.float32)


# -- round trips ------------------------------------------------------------------------------

SHAPES = [(), (1,), (7,), (3, 5), (2, 3, 4), (0,), (4, 0, 2)]


@pytest.mark.parametrize("shape", SHAPES)
def test_f32_round_trip_is_exact(tmp_path, rng, shape):
    x = rng.standard_normal(shape).astype(np.float32)
    save_safetensors(tmp_path / "a.safetensors", {"x": x})
    with SafetensorsFile(tmp_path / "a.safetensors") as f:
        assert f.dtype("x") == "F32" and f.shape("x") == shape
        y = f["x"]
        assert y.dtype == np.float32 and y.shape == shape
        np.testing.assert_array_equal(y, x)


def test_f16_round_trip_matches_numpy_rounding(tmp_path, rng):
    # float32 -> F16 is numpy's IEEE round-to-nearest-even; F16 -> float32 is exact.
    x = np.concatenate([rng.standard_normal(1000).astype(np.float32) * 100,
                        np.float32([0.0, -0.0, np.inf, -np.inf, np.nan, 65504.0, 70000.0, 1e-8])])
    save_safetensors(tmp_path / "h.safetensors", {"x": x}, dtype="F16")
    with SafetensorsFile(tmp_path / "h.safetensors") as f:
        assert f.dtype("x") == "F16" and f.raw("x").dtype == np.float16
        with np.errstate(over="ignore"):
            expected = x.astype(np.float16).astype(np.float32)
        np.testing.assert_array_equal(f["x"], expected)
        assert np.signbit(f["x"][4 + 996 + 1])  # -0.0 keeps its sign


# float32 bit pattern -> bfloat16 bits, derived by hand: keep the top 16 bits, round the dropped
# 16 by nearest-even (0x8000 is the halfway point), NaNs quieted, never rounded into infinity.
BF16_CASES = [
    (0x3F800000, 0x3F80),  # 1.0, exact
    (0x3F807FFF, 0x3F80),  # just below half an ulp: down
    (0x3F808000, 0x3F80),  # exactly half, kept part even (0x3F80): down
    (0x3F808001, 0x3F81),  # just above half: up
    (0x3F818000, 0x3F82),  # exactly half, kept part odd (0x3F81): up to even
    (0xBF818000, 0xBF82),  # the same, negative (sign-magnitude: same bits below the sign)
    (0x3FFF8000, 0x4000),  # carry into the exponent: 1.99999 -> 2.0
    (0x00000000, 0x0000),  # +0
    (0x80000000, 0x8000),  # -0 keeps its sign
    (0x00008000, 0x0000),  # subnormal tie, even: down to +0
    (0x00018000, 0x0002),  # subnormal tie, odd: up
    (0x7F800000, 0x7F80),  # +inf
    (0xFF800000, 0xFF80),  # -inf
    (0x7F7F7FFF, 0x7F7F),  # below half under the largest bf16: largest bf16
    (0x7F7FFFFF, 0x7F80),  # float32 max rounds past the largest bf16: +inf (IEEE overflow)
    (0xFF7FFFFF, 0xFF80),  # -float32 max: -inf
    (0x7FC00000, 0x7FC0),  # quiet NaN
    (0x7F800001, 0x7FC0),  # NaN with only low payload bits: naive truncation would give inf
    (0xFFFFFFFF, 0xFFFF),  # negative NaN, all payload bits: must not wrap to 0
    (0x7FBFFFFF, 0x7FFF),  # signalling NaN: quiet bit set, top payload kept
]


def test_float32_to_bf16_rounds_to_nearest_even():
    x = bits([c[0] for c in BF16_CASES])
    got = float32_to_bf16(x)
    assert got.dtype == np.uint16
    assert [hex(v) for v in got] == [hex(c[1]) for c in BF16_CASES]


def test_float64_to_bf16_rounds_once():
    # float64 values just off a bf16 tie: float32 rounding lands them on the tie, which must
    # then break the way the exact value lies, not to even
    e = 2.0 ** -40
    x = np.array([1 + 2**-8 + e, 1 + 2**-8 - e, 1 + 3 * 2**-8 - e, 1 + 3 * 2**-8 + e,
                  -(1 + 2**-8 + e), 1 + 2**-8, 1e300, -np.inf, np.nan, 0.0, -0.0])
    assert [hex(v) for v in float32_to_bf16(x)] == [
        "0x3f81", "0x3f80", "0x3f81", "0x3f82", "0xbf81", "0x3f80", "0x7f80", "0xff80",
        "0x7fc0", "0x0", "0x8000"]
    # float32 input of the same ties: ties to even (they are exact ties there)
    assert [hex(v) for v in float32_to_bf16(x[:4].astype(np.float32))] == [
        "0x3f80", "0x3f80", "0x3f82", "0x3f82"]


def test_bf16_round_trip_is_exact_against_hand_bits(tmp_path):
    x = bits([c[0] for c in BF16_CASES])
    save_safetensors(tmp_path / "b.safetensors", {"x": x}, dtype="BF16")
    with SafetensorsFile(tmp_path / "b.safetensors") as f:
        assert f.dtype("x") == "BF16"
        raw = f.raw("x")
        assert raw.dtype == np.uint16
        assert [hex(v) for v in raw] == [hex(c[1]) for c in BF16_CASES]
        y = f["x"]
        # bf16 -> float32 appends 16 zero bits: exact
        assert y.dtype == np.float32
        assert [hex(v) for v in y.view(np.uint32)] == [hex(c[1] << 16) for c in BF16_CASES]
        nan_in = np.isnan(x)
        assert np.array_equal(np.isnan(y), nan_in)  # NaN stays NaN, nothing else becomes NaN
        assert np.array_equal(np.signbit(y), np.signbit(x))


def test_bf16_of_representable_values_is_exact(tmp_path, rng):
    # values with 8 significant bits are bf16 numbers: the round trip returns them unchanged
    x = bf16_to_float32(rng.integers(0, 1 << 16, 4096, dtype=np.uint16))
    finite = x[np.isfinite(x)]
    save_safetensors(tmp_path / "b.safetensors", {"x": finite}, dtype="BF16")
    with SafetensorsFile(tmp_path / "b.safetensors") as f:
        np.testing.assert_array_equal(f["x"], finite)


def test_dtypes_of_getitem_and_raw(tmp_path, rng):
    tensors = {
        "f64": rng.standard_normal(5), "i64": np.arange(-3, 3, dtype=np.int64),
        "i32": np.arange(4, dtype=np.int32), "i16": np.arange(4, dtype=np.int16),
        "i8": np.arange(-2, 2, dtype=np.int8), "u8": np.arange(4, dtype=np.uint8),
        "bool": np.array([True, False, True]),
    }
    save_safetensors(tmp_path / "d.safetensors", tensors)
    with SafetensorsFile(tmp_path / "d.safetensors") as f:
        assert {n: f.dtype(n) for n in f} == {"f64": "F64", "i64": "I64", "i32": "I32",
                                              "i16": "I16", "i8": "I8", "u8": "U8",
                                              "bool": "BOOL"}
        assert f["f64"].dtype == np.float32  # floats become float32
        np.testing.assert_array_equal(f["f64"], tensors["f64"].astype(np.float32))
        np.testing.assert_array_equal(f.raw("f64"), tensors["f64"])
        for name in ("i64", "i32", "i16", "i8", "u8", "bool"):  # ints keep their dtype
            assert f[name].dtype == tensors[name].dtype
            np.testing.assert_array_equal(f[name], tensors[name])


def test_dtype_conversion_leaves_integer_tensors_alone(tmp_path, rng):
    save_safetensors(tmp_path / "m.safetensors",
                     {"w": rng.standard_normal((2, 2)).astype(np.float32),
                      "ids": np.arange(3, dtype=np.int64)}, dtype="BF16")
    with SafetensorsFile(tmp_path / "m.safetensors") as f:
        assert (f.dtype("w"), f.dtype("ids")) == ("BF16", "I64")


def test_mapping_interface_and_metadata(tmp_path):
    save_safetensors(tmp_path / "m.safetensors", {"b": np.zeros(2, np.float32),
                                                  "a": np.ones(3, np.float32)},
                     metadata={"format": "pt", "note": "héllo"})
    with SafetensorsFile(tmp_path / "m.safetensors") as f:
        assert list(f.keys()) == ["a", "b"] and len(f) == 2
        assert "a" in f and "c" not in f
        assert f.metadata == {"format": "pt", "note": "héllo"}
        assert sorted(dict(f.items())) == ["a", "b"]
        with pytest.raises(KeyError, match="no tensor 'c'"):
            f["c"]


def test_layout_header_padding_and_alignment(tmp_path):
    # mixed element sizes: each tensor must start at a multiple of its own element size
    tensors = {"a8": np.ones(3, np.int8), "b16": np.ones(3, np.float16),
               "c32": np.ones(3, np.float32), "d64": np.ones(3, np.float64)}
    path = tmp_path / "l.safetensors"
    save_safetensors(path, tensors)
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    assert n % 8 == 0
    header = data[8:8 + n]
    assert header == header.rstrip(b" ") + b" " * (len(header) - len(header.rstrip(b" ")))
    parsed = json.loads(header)
    assert list(parsed) == sorted(parsed)  # header lists tensors by name
    for name, info in parsed.items():
        itemsize = tensors[name].itemsize
        assert (8 + n + info["data_offsets"][0]) % itemsize == 0
    assert 8 + n + max(i["data_offsets"][1] for i in parsed.values()) == len(data)  # no holes


# -- memory mapping -----------------------------------------------------------------------------

def test_f32_tensors_are_read_only_views_of_the_mapping(tmp_path, rng):
    x = rng.standard_normal((64, 32)).astype(np.float32)
    save_safetensors(tmp_path / "z.safetensors", {"x": x, "y": x[:2]})
    f = SafetensorsFile(tmp_path / "z.safetensors")
    y = f["x"]
    assert isinstance(_owner(y), mmap.mmap)
    assert np.shares_memory(y, f.raw("x")) and np.shares_memory(y, f["x"])
    assert not y.flags.writeable
    with pytest.raises(ValueError):
        y[0, 0] = 1.0
    f.close()  # the views keep the mapping alive
    np.testing.assert_array_equal(y, x)
    with pytest.raises(ValueError, match="closed"):
        f["x"]


def test_misaligned_f32_data_comes_back_aligned(tmp_path):
    # a foreign file whose F32 tensor starts at an odd offset: an aligned copy, same values
    x = np.arange(4, dtype=np.float32)
    header = {"pad": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]},
              "x": {"dtype": "F32", "shape": [4], "data_offsets": [1, 17]}}
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path = write_raw(tmp_path / "u.safetensors", text, b"\x07" + x.tobytes())
    with SafetensorsFile(path) as f:
        assert f.raw("x").ctypes.data % 4 != 0
        y = f["x"]
        assert y.flags.aligned and y.dtype == np.float32
        np.testing.assert_array_equal(y, x)


# -- cross-checks with the safetensors package --------------------------------------------------

def test_our_files_read_by_safetensors(tmp_path, rng):
    st = pytest.importorskip("safetensors")
    from safetensors.numpy import load_file
    tensors = {"w": rng.standard_normal((3, 4)).astype(np.float32),
               "h": rng.standard_normal(5).astype(np.float16),
               "ids": np.arange(6, dtype=np.int64).reshape(2, 3), "flag": np.array([True])}
    save_safetensors(tmp_path / "o.safetensors", tensors, metadata={"format": "np"})
    loaded = load_file(str(tmp_path / "o.safetensors"))
    assert sorted(loaded) == sorted(tensors)
    for name, value in tensors.items():
        assert loaded[name].dtype == value.dtype
        np.testing.assert_array_equal(loaded[name], value)
    # BF16: NumPy has no dtype for it; the package's deserialize gives the raw bytes
    x = rng.standard_normal(7).astype(np.float32)
    save_safetensors(tmp_path / "b.safetensors", {"x": x}, dtype="BF16")
    [(name, info)] = st.deserialize((tmp_path / "b.safetensors").read_bytes())
    assert (name, info["dtype"], info["shape"]) == ("x", "BF16", [7])
    assert bytes(info["data"]) == float32_to_bf16(x).tobytes()


def test_safetensors_files_read_by_us(tmp_path, rng):
    st = pytest.importorskip("safetensors")
    from safetensors.numpy import save_file
    tensors = {"w": rng.standard_normal((3, 4)).astype(np.float32),
               "h": rng.standard_normal(5).astype(np.float16),
               "d": rng.standard_normal(2), "ids": np.arange(6, dtype=np.int32),
               "e": np.zeros((0, 3), np.float32)}
    save_file(tensors, str(tmp_path / "t.safetensors"), metadata={"format": "np"})
    with SafetensorsFile(tmp_path / "t.safetensors") as f:
        assert f.metadata == {"format": "np"} and sorted(f) == sorted(tensors)
        for name, value in tensors.items():
            np.testing.assert_array_equal(f.raw(name), value)
            expected = value.astype(np.float32) if value.dtype.kind == "f" else value
            np.testing.assert_array_equal(f[name], expected)
    u = float32_to_bf16(rng.standard_normal(9).astype(np.float32))
    if hasattr(st, "TensorSpec"):  # safetensors >= 0.8 takes pointers
        spec = st.TensorSpec(dtype="bfloat16", shape=[3, 3], data_ptr=u.ctypes.data,
                             data_len=u.nbytes)
    else:
        spec = {"dtype": "bfloat16", "shape": [3, 3], "data": u.tobytes()}
    (tmp_path / "b.safetensors").write_bytes(st.serialize({"x": spec}, None))
    with SafetensorsFile(tmp_path / "b.safetensors") as f:
        assert f.dtype("x") == "BF16"
        np.testing.assert_array_equal(f.raw("x"), u.reshape(3, 3))
        np.testing.assert_array_equal(f["x"], bf16_to_float32(u).reshape(3, 3))


# -- validation -----------------------------------------------------------------------------------

@pytest.mark.parametrize("mapped", [True, False])
def test_truncated_files_raise_at_every_cut(tmp_path, rng, mapped):
    path = tmp_path / "full.safetensors"
    save_safetensors(path, {"a": rng.standard_normal(10).astype(np.float32),
                            "b": rng.standard_normal(3).astype(np.float32)})
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    cut_path = tmp_path / "cut.safetensors"
    for cut in (0, 1, 7, 8, 9, 8 + n // 2, 8 + n - 1, 8 + n, 8 + n + 5, len(data) - 1):
        cut_path.write_bytes(data[:cut])
        with pytest.raises(ValueError, match="cut.safetensors"):
            SafetensorsFile(cut_path, mmap=mapped)
    # a cut in the data names the tensor that no longer fits ('b' is stored last)
    with pytest.raises(ValueError, match=r"cut\.safetensors.*tensor 'b'.*end past the data"):
        SafetensorsFile(cut_path, mmap=mapped)


@pytest.mark.parametrize("mapped", [True, False])
def test_a_file_shrinking_while_opened_is_caught(tmp_path, rng, monkeypatch, mapped):
    # The header is checked against the size fstat gives; what is then mapped or read is
    # checked again. Simulated: fstat reports the full size of a file already cut.
    path = tmp_path / "s.safetensors"
    save_safetensors(path, {"a": rng.standard_normal(10).astype(np.float32)})
    full = os.stat(path)
    os.truncate(path, full.st_size - 4)
    monkeypatch.setattr(os, "fstat", lambda fd: full)
    with pytest.raises(ValueError, match=r"s\.safetensors.*tensor 'a' ends at byte 40 of the "
                                         r"data buffer, but the file now holds only 36"):
        SafetensorsFile(path, mmap=mapped)


def test_no_mmap_reads_the_data_once_and_keeps_it(tmp_path, rng):
    path = tmp_path / "m.safetensors"
    tensors = {"a": rng.standard_normal((4, 5)).astype(np.float32),
               "h": rng.standard_normal(7).astype(np.float16),
               "i": np.arange(6, dtype=np.int64)}
    save_safetensors(path, tensors)
    with SafetensorsFile(path, mmap=False) as f:
        views = {name: f[name] for name in f}
        assert isinstance(_owner(views["a"]), bytes) and not views["a"].flags.writeable
        assert _owner(views["i"]) is _owner(views["a"])   # one buffer for the whole file
        assert repr(f).endswith("3 tensors, in memory)")
    path.write_bytes(b"\0" * 100)   # the file can change freely now
    for name, value in tensors.items():
        np.testing.assert_array_equal(views[name], value.astype(views[name].dtype))


def entry(dtype="F32", shape=(2,), offsets=(0, 8)):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


def test_empty_tensors_overlap_nothing(tmp_path):
    # (overlapping non-empty tensors: tests/test_malformed_files.py)
    header = {"a": entry(offsets=(0, 8)), "b": entry(offsets=(8, 16)),
              "empty": entry(shape=(0,), offsets=(4, 4))}
    with SafetensorsFile(write_raw(tmp_path / "ok.safetensors", header, b"\0" * 16)) as f:
        assert f["empty"].shape == (0,)


def test_bool_bytes_other_than_0_1(tmp_path):
    path = write_raw(tmp_path / "b.safetensors",
                     {"m": entry(dtype="BOOL", shape=(2,), offsets=(0, 2))}, b"\x01\x05")
    with SafetensorsFile(path) as f:
        with pytest.raises(ValueError, match="tensor 'm': BOOL bytes"):
            f["m"]


def test_writer_errors(tmp_path):
    with pytest.raises(ValueError, match="dtype must be"):
        save_safetensors(tmp_path / "w.safetensors", {}, dtype="F8")
    with pytest.raises(TypeError, match="tensor 'x' must be a numpy.ndarray"):
        save_safetensors(tmp_path / "w.safetensors", {"x": [1.0]})
    with pytest.raises(TypeError, match="complex64"):
        save_safetensors(tmp_path / "w.safetensors", {"x": np.zeros(2, np.complex64)})
    with pytest.raises(ValueError, match="invalid tensor name"):
        save_safetensors(tmp_path / "w.safetensors", {"__metadata__": np.zeros(1)})
    with pytest.raises(TypeError, match="metadata"):
        save_safetensors(tmp_path / "w.safetensors", {}, metadata={"k": 1})
    assert os.listdir(tmp_path) == []  # nothing half-written left behind

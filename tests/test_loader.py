"""fastattn.io and fastattn.load: safetensors round trips (F32/F16/BF16 exact), zero-copy
mapping, cross-checks with the `safetensors` package, sharded directories, every validation
error, config.json normalisation (transformers 4.x and 5.x layouts), and load's dispatch."""
import dataclasses
import json
import mmap
import os
import struct

import numpy as np
import pytest

import fastattn
from fastattn import loading, testing
from fastattn.io import (Checkpoint, SafetensorsFile, bf16_to_float32, float32_to_bf16,
                         load_config, save_checkpoint, save_safetensors)


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

def _owner(array):
    """The object at the end of an array's .base chain (through NumPy's memoryview wrapper)."""
    while True:
        if isinstance(array, np.ndarray) and array.base is not None:
            array = array.base
        elif isinstance(array, memoryview):
            array = array.obj
        else:
            return array


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

def test_truncated_files_raise_at_every_cut(tmp_path, rng):
    path = tmp_path / "full.safetensors"
    save_safetensors(path, {"a": rng.standard_normal(10).astype(np.float32),
                            "b": rng.standard_normal(3).astype(np.float32)})
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    cut_path = tmp_path / "cut.safetensors"
    for cut in (0, 1, 7, 8, 9, 8 + n // 2, 8 + n - 1, 8 + n, 8 + n + 5, len(data) - 1):
        cut_path.write_bytes(data[:cut])
        with pytest.raises(ValueError, match="cut.safetensors"):
            SafetensorsFile(cut_path)


def test_short_file_and_oversized_header_length(tmp_path):
    path = tmp_path / "s.safetensors"
    path.write_bytes(b"\x01\x02\x03")
    with pytest.raises(ValueError, match=r"s\.safetensors.*3 bytes, fewer than"):
        SafetensorsFile(path)
    write_raw(path, b"{}", length=1 << 62)
    with pytest.raises(ValueError, match="header length .* exceeds"):
        SafetensorsFile(path)


@pytest.mark.parametrize("header, message", [
    (b"\xff\xfe{}      ", "not UTF-8"),
    (b"{not json}", "not valid JSON"),
    (b"[1, 2]  ", "must be a JSON object"),
    (b'{"a": 1, "a": 2}', "duplicate key 'a'"),
    (b'{"__metadata__": {"k": 1}}', "__metadata__"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
])
def test_corrupt_headers(tmp_path, header, message):
    path = write_raw(tmp_path / "c.safetensors", header)
    with pytest.raises(ValueError, match=message):
        SafetensorsFile(path)


def entry(dtype="F32", shape=(2,), offsets=(0, 8)):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


@pytest.mark.parametrize("info, message", [
    ({"shape": [2], "data_offsets": [0, 8]}, "no 'dtype'"),
    ({"dtype": "F32", "data_offsets": [0, 8]}, "no 'shape'"),
    ({"dtype": "F32", "shape": [2]}, "no 'data_offsets'"),
    ("F32", "must be an object"),
    (entry(dtype="F8_E4M3"), "unsupported dtype 'F8_E4M3'"),
    (entry(dtype="Q4"), "unsupported dtype 'Q4'"),
    (entry(shape=(-2,)), "shape must be"),
    (entry(shape=(2.0,)), "shape must be"),
    (entry(offsets=(0,)), "data_offsets must be"),
    (entry(offsets=(8, 0)), "data_offsets must be"),
    (entry(offsets=(0, 12)), "span 12 bytes but shape"),
    (entry(shape=(3,)), "needs 12"),
    (entry(offsets=(8, 16)), "end past the data buffer"),
    (entry(shape=(1 << 62, 1 << 62), offsets=(0, 8)), "span 8 bytes"),  # no overflow
])
def test_bad_entries_name_the_file_and_tensor(tmp_path, info, message):
    path = write_raw(tmp_path / "e.safetensors", {"w": info}, b"\0" * 8)
    with pytest.raises(ValueError, match=rf"e\.safetensors.*tensor 'w'.*{message}"):
        SafetensorsFile(path)


def test_overlapping_tensors(tmp_path):
    header = {"a": entry(offsets=(0, 8)), "b": entry(offsets=(4, 12)),
              "empty": entry(shape=(0,), offsets=(4, 4))}  # empty ranges overlap nothing
    path = write_raw(tmp_path / "o.safetensors", header, b"\0" * 12)
    with pytest.raises(ValueError, match=r"o\.safetensors.*tensors 'a' and 'b' overlap"):
        SafetensorsFile(path)
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


# -- model directories ---------------------------------------------------------------------------

TINY_GPT2 = {"model_type": "gpt2", "n_embd": 8, "n_head": 2, "n_layer": 1, "n_positions": 16,
             "vocab_size": 11}


def random_tensors(rng, n=7):
    return testing.random_tensors({f"layer.{i}.weight": (i + 1, 3) for i in range(n)}, rng,
                                  std=1.0)


@pytest.mark.parametrize("shards", [1, 2, 3, 7])
@pytest.mark.parametrize("dtype", ["F32", "BF16"])
def test_checkpoint_round_trip(tmp_path, rng, shards, dtype):
    tensors = random_tensors(rng)
    save_checkpoint(tmp_path, TINY_GPT2, tensors, dtype=dtype, shards=shards)
    with Checkpoint(tmp_path) as ckpt:
        assert sorted(ckpt.keys()) == sorted(tensors) and len(ckpt) == len(tensors)
        assert len(ckpt.files) == shards
        for name, value in tensors.items():
            expected = value if dtype == "F32" else bf16_to_float32(float32_to_bf16(value))
            np.testing.assert_array_equal(ckpt[name], expected)
            assert ckpt.dtype(name) == dtype and ckpt.shape(name) == value.shape
        assert ckpt.config.n_embd == 8
    if shards > 1:
        index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
        assert set(index["weight_map"].values()) == {
            f"model-{i:05d}-of-{shards:05d}.safetensors" for i in range(1, shards + 1)}
        expected_bytes = sum(v.size for v in tensors.values()) * (4 if dtype == "F32" else 2)
        assert index["metadata"]["total_size"] == expected_bytes
    else:
        with SafetensorsFile(tmp_path / "model.safetensors") as f:
            assert f.metadata == {"format": "pt"}


def test_switching_layout_removes_the_stale_one(tmp_path, rng):
    old, new = random_tensors(rng, 3), random_tensors(rng, 2)
    save_checkpoint(tmp_path, TINY_GPT2, old, shards=3)
    save_checkpoint(tmp_path, TINY_GPT2, new)
    with Checkpoint(tmp_path) as ckpt:
        assert sorted(ckpt) == sorted(new)


def test_single_file_wins_over_an_index_like_transformers(tmp_path, rng):
    sharded, single = random_tensors(rng, 3), random_tensors(rng, 2)
    save_checkpoint(tmp_path / "a", TINY_GPT2, sharded, shards=3)
    save_safetensors(tmp_path / "a" / "model.safetensors", single)
    with Checkpoint(tmp_path / "a") as ckpt:
        assert sorted(ckpt) == sorted(single) and len(ckpt.files) == 1


def test_resaving_loaded_tensors(tmp_path, rng):
    # read-only mapped views are valid writer inputs, and a file may be replaced while mapped
    tensors = random_tensors(rng, 3)
    save_safetensors(tmp_path / "a.safetensors", tensors)
    with SafetensorsFile(tmp_path / "a.safetensors") as f:
        views = {n: f[n] for n in f}
        save_safetensors(tmp_path / "a.safetensors", {n: 2 * v for n, v in views.items()})
        for n, v in tensors.items():
            np.testing.assert_array_equal(views[n], v)  # the old mapping is untouched
    with SafetensorsFile(tmp_path / "a.safetensors") as f:
        for n, v in tensors.items():
            np.testing.assert_array_equal(f[n], 2 * v)


def test_missing_shard(tmp_path, rng):
    save_checkpoint(tmp_path, TINY_GPT2, random_tensors(rng), shards=2)
    os.remove(tmp_path / "model-00002-of-00002.safetensors")
    with pytest.raises(FileNotFoundError, match="shard 'model-00002-of-00002.safetensors'"):
        Checkpoint(tmp_path)


def test_tensor_listed_in_index_but_absent_from_shard(tmp_path, rng):
    save_checkpoint(tmp_path, TINY_GPT2, random_tensors(rng), shards=2)
    index_path = tmp_path / "model.safetensors.index.json"
    index = json.loads(index_path.read_text())
    index["weight_map"]["ghost.weight"] = "model-00001-of-00002.safetensors"
    index_path.write_text(json.dumps(index))
    with pytest.raises(ValueError, match="'ghost.weight' is listed in shard"):
        Checkpoint(tmp_path)


@pytest.mark.parametrize("index, message", [
    ("{oops", "not valid UTF-8 JSON"),
    ('{"metadata": {}}', "weight_map"),
    ('{"weight_map": {"a": "../model.safetensors"}}', "not a file name"),
    ('{"weight_map": {"a": "/etc/passwd"}}', "not a file name"),
    ('{"weight_map": {"a": 3}}', "not a file name"),
])
def test_bad_index(tmp_path, index, message):
    (tmp_path / "model.safetensors.index.json").write_text(index)
    with pytest.raises(ValueError, match=message):
        Checkpoint(tmp_path)


@pytest.mark.parametrize("name", ["pytorch_model.bin", "model.pt", "weights.pth", "last.ckpt"])
def test_pickle_only_directory_is_refused(tmp_path, name):
    (tmp_path / name).write_bytes(b"\x80\x04not really a pickle")
    (tmp_path / "config.json").write_text(json.dumps(TINY_GPT2))
    with pytest.raises(ValueError, match=rf"only pickle weights \({name}\).*arbitrary code"):
        Checkpoint(tmp_path)
    with pytest.raises(ValueError, match="pickle"):
        fastattn.load(tmp_path)


def test_directory_without_weights_or_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="has no model.safetensors"):
        Checkpoint(tmp_path)
    with pytest.raises(FileNotFoundError, match="no such directory.*nowhere"):
        Checkpoint(tmp_path / "nowhere")
    (tmp_path / "f").write_text("")
    with pytest.raises(NotADirectoryError):
        Checkpoint(tmp_path / "f")


# -- config.json ----------------------------------------------------------------------------------

LLAMA = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 160,
         "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
         "vocab_size": 100, "max_position_embeddings": 2048}
LLAMA3_SCALING = {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                  "original_max_position_embeddings": 8192}


def test_llama_defaults():
    c = load_config(LLAMA)
    assert (c.head_dim, c.num_key_value_heads, c.rms_norm_eps, c.hidden_act) == (16, 2, 1e-6,
                                                                                "silu")
    assert (c.rope_theta, c.rope_scaling, c.partial_rotary_factor) == (10000.0, None, 1.0)
    assert (c.tie_word_embeddings, c.attention_bias, c.mlp_bias, c.qkv_bias) == (False,) * 4
    assert c.sliding_window is None
    assert load_config({**LLAMA, "num_key_value_heads": None}).num_key_value_heads == 4
    assert load_config({k: v for k, v in LLAMA.items()
                        if k != "max_position_embeddings"}).max_position_embeddings == 2048


def test_head_dim_null_or_explicit():
    assert load_config({**LLAMA, "head_dim": None}).head_dim == 64 // 4
    assert load_config({**LLAMA, "head_dim": 32}).head_dim == 32  # Mistral-Nemo style
    with pytest.raises(ValueError, match="hidden_size .66. must be a multiple of "
                                         "num_attention_heads .4."):
        load_config({**LLAMA, "hidden_size": 66})


@pytest.mark.parametrize("v4, v5", [
    # llama3 (Llama 3.1): 4.x writes rope_theta + rope_scaling, 5.x one rope_parameters dict
    ({"rope_theta": 500000.0, "rope_scaling": {"rope_type": "llama3", **LLAMA3_SCALING}},
     {"rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, **LLAMA3_SCALING}}),
    # older 4.x dicts name the type "type"; transformers 4.4x writes both keys
    ({"rope_theta": 10000.0, "rope_scaling": {"type": "linear", "factor": 2.0}},
     {"rope_parameters": {"rope_type": "linear", "rope_theta": 10000.0, "factor": 2.0}}),
    ({"rope_scaling": {"type": "linear", "rope_type": "linear", "factor": 2.0}},
     {"rope_parameters": {"rope_type": "linear", "factor": 2.0}}),
])
def test_rope_4x_and_5x_agree(v4, v5):
    a, b = load_config({**LLAMA, **v4}), load_config({**LLAMA, **v5})
    assert (a.rope_theta, a.rope_scaling) == (b.rope_theta, b.rope_scaling)
    assert "type" not in a.rope_scaling and "rope_theta" not in a.rope_scaling


def test_rope_normalised_values_by_hand():
    c = load_config({**LLAMA, "rope_theta": 500000, "rope_scaling": {"rope_type": "llama3",
                                                                    **LLAMA3_SCALING}})
    assert c.rope_theta == 500000.0 and isinstance(c.rope_theta, float)
    assert c.rope_scaling == {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                              "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
    # dynamic / yarn: transformers reads the original length from max_position_embeddings
    c = load_config({**LLAMA, "rope_scaling": {"type": "dynamic", "factor": 2.0}})
    assert c.rope_scaling == {"rope_type": "dynamic", "factor": 2.0,
                              "original_max_position_embeddings": 2048}
    c = load_config({**LLAMA, "model_type": "qwen2", "rope_parameters": {
        "rope_type": "yarn", "rope_theta": 1000000.0, "factor": 4.0,
        "original_max_position_embeddings": 32768}})
    assert c.rope_theta == 1e6
    assert c.rope_scaling == {"rope_type": "yarn", "factor": 4.0,
                              "original_max_position_embeddings": 32768}
    c = load_config({**LLAMA, "rope_parameters": {"rope_type": "yarn", "factor": 4.0,
                                                  "beta_fast": 32, "truncate": False}})
    assert c.rope_scaling == {"rope_type": "yarn", "factor": 4.0, "beta_fast": 32,
                              "truncate": False, "original_max_position_embeddings": 2048}
    # default rotation: None whichever way it is written
    for extra in ({"rope_scaling": None}, {"rope_parameters": {"rope_type": "default",
                                                               "rope_theta": 10000.0}},
                  {"rope_scaling": {"rope_type": "default"}}):
        c = load_config({**LLAMA, **extra})
        assert (c.rope_theta, c.rope_scaling) == (10000.0, None)
    c = load_config({**LLAMA, "rope_parameters": {"rope_type": "default", "rope_theta": 1e4,
                                                  "partial_rotary_factor": 0.5}})
    assert c.partial_rotary_factor == 0.5


@pytest.mark.parametrize("extra, message", [
    ({"rope_scaling": {"type": "longrope", "factor": 2.0}}, "rope type 'longrope' is not supp"),
    ({"rope_scaling": {"type": "linear", "rope_type": "dynamic", "factor": 2.0}}, "two types"),
    ({"rope_scaling": {"type": "linear"}}, "needs 'factor'"),
    ({"rope_scaling": {"type": "linear", "factor": "2"}}, r"rope_scaling\['factor'\]"),
    ({"rope_scaling": {"rope_type": "llama3", "factor": 8.0}}, "needs 'low_freq_factor'"),
    ({"rope_scaling": "linear"}, "'rope_scaling' must be an object"),
    ({"rope_theta": 10000.0, "rope_parameters": {"rope_type": "default", "rope_theta": 5e5}},
     "rope_theta values disagree"),
    ({"rope_scaling": {"type": "linear", "factor": 2.0},
      "rope_parameters": {"rope_type": "linear", "factor": 4.0}}, "disagree"),
    ({"rope_theta": -1.0}, "'rope_theta' must be > 0"),
    ({"partial_rotary_factor": 1.5}, r"in \(0, 1\]"),
])
def test_rope_errors(extra, message):
    with pytest.raises(ValueError, match=message):
        load_config({**LLAMA, **extra})


def test_rope_dicts_are_what_the_rope_op_accepts():
    positions = pytest.importorskip("fastattn.rope_frequencies")  # merged from the rope branch
    for scaling in ({"rope_scaling": {"type": "linear", "factor": 2.0}},
                    {"rope_scaling": {"type": "dynamic", "factor": 2.0}},
                    {"rope_parameters": {"rope_type": "yarn", "factor": 4.0}},
                    {"rope_scaling": {"rope_type": "llama3", **LLAMA3_SCALING}}):
        c = load_config({**LLAMA, **scaling})
        inv_freq, _ = positions.rope_frequencies(c.head_dim, c.rope_theta, c.rope_scaling, 4096)
        assert inv_freq.shape == (c.head_dim // 2,) and np.all(np.isfinite(inv_freq))
        assert positions.resolve_rope_config("rope", c.rope_theta, None, c.head_dim,
                                             c.rope_scaling) == (c.rope_theta, None)


def test_qwen2():
    base = {**LLAMA, "model_type": "qwen2", "tie_word_embeddings": True,
            "use_sliding_window": False, "sliding_window": 4096, "max_window_layers": 28}
    c = load_config(base)
    assert c.qkv_bias and not c.attention_bias  # q/k/v biased, o_proj not
    assert c.tie_word_embeddings  # honoured from the json
    assert c.sliding_window is None  # off unless use_sliding_window
    assert load_config({k: v for k, v in base.items()
                        if k != "tie_word_embeddings"}).tie_word_embeddings is False
    # on: only layers >= max_window_layers slide
    assert load_config({**base, "use_sliding_window": True}).sliding_window is None  # 2 < 28
    assert load_config({**base, "use_sliding_window": True,
                        "max_window_layers": 0}).sliding_window == 4096
    with pytest.raises(ValueError, match="some layers use a sliding window"):
        load_config({**base, "use_sliding_window": True, "max_window_layers": 1})
    with pytest.raises(ValueError, match="some layers use a sliding window"):
        load_config({**base, "use_sliding_window": True,
                     "layer_types": ["full_attention", "sliding_attention"]})


def test_mistral_sliding_window():
    mistral = {**LLAMA, "model_type": "mistral"}
    assert load_config({**mistral, "sliding_window": 4096}).sliding_window == 4096
    assert load_config({**mistral, "sliding_window": None}).sliding_window is None
    assert load_config(mistral).sliding_window == 4096  # transformers' MistralConfig default
    assert load_config(mistral).qkv_bias is False
    assert load_config({k: v for k, v in mistral.items()
                        if k != "max_position_embeddings"}).max_position_embeddings == 131072
    with pytest.raises(ValueError, match="'sliding_window' must be >= 1"):
        load_config({**mistral, "sliding_window": 0})
    # llama has no sliding window, whatever a json may carry
    assert load_config({**LLAMA, "sliding_window": 4096}).sliding_window is None


def test_gpt2_defaults():
    c = load_config(TINY_GPT2)
    assert (c.layer_norm_epsilon, c.activation_function, c.n_inner, c.tie_word_embeddings) == \
        (1e-5, "gelu_new", None, True)
    assert load_config({**TINY_GPT2, "n_inner": 32}).n_inner == 32
    with pytest.raises(ValueError, match="scale_attn_by_inverse_layer_idx"):
        load_config({**TINY_GPT2, "scale_attn_by_inverse_layer_idx": True})
    with pytest.raises(ValueError, match="n_embd .8. must be a multiple of n_head .3."):
        load_config({**TINY_GPT2, "n_head": 3})


BERT = {"model_type": "bert", "hidden_size": 32, "num_hidden_layers": 2,
        "num_attention_heads": 4, "intermediate_size": 64, "max_position_embeddings": 64,
        "vocab_size": 50}


def test_bert_defaults_and_position_embedding_type():
    c = load_config(BERT)
    assert (c.hidden_act, c.type_vocab_size, c.layer_norm_eps, c.pad_token_id,
            c.position_embedding_type) == ("gelu", 2, 1e-12, 0, "absolute")
    with pytest.raises(ValueError, match="position_embedding_type 'relative_key' is not"):
        load_config({**BERT, "position_embedding_type": "relative_key"})


# config.json files as the Hub serves them (sizes of the released models), normalised by hand
HUB_CONFIGS = {
    "llama-3.1-8b": ({
        "architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
        "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "hidden_act": "silu",
        "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 14336,
        "max_position_embeddings": 131072, "mlp_bias": False, "model_type": "llama",
        "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
        "pretraining_tp": 1, "rms_norm_eps": 1e-05,
        "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 8192, "rope_type": "llama3"},
        "rope_theta": 500000.0, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
        "transformers_version": "4.43.0.dev0", "use_cache": True, "vocab_size": 128256},
        {"head_dim": 128, "num_key_value_heads": 8, "rms_norm_eps": 1e-5, "rope_theta": 5e5,
         "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                          "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
         "sliding_window": None, "qkv_bias": False, "torch_dtype": "bfloat16"}),
    "qwen2.5-0.5b": ({
        "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0,
        "bos_token_id": 151643, "eos_token_id": 151643, "hidden_act": "silu",
        "hidden_size": 896, "initializer_range": 0.02, "intermediate_size": 4864,
        "max_position_embeddings": 32768, "max_window_layers": 24, "model_type": "qwen2",
        "num_attention_heads": 14, "num_hidden_layers": 24, "num_key_value_heads": 2,
        "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 32768,
        "tie_word_embeddings": True, "torch_dtype": "bfloat16", "use_cache": True,
        "use_mrope": False, "use_sliding_window": False, "vocab_size": 151936},
        {"head_dim": 64, "num_key_value_heads": 2, "rope_theta": 1e6, "rope_scaling": None,
         "sliding_window": None, "qkv_bias": True, "tie_word_embeddings": True}),
    "mistral-7b-v0.1": ({
        "architectures": ["MistralForCausalLM"], "bos_token_id": 1, "eos_token_id": 2,
        "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02,
        "intermediate_size": 14336, "max_position_embeddings": 32768, "model_type": "mistral",
        "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
        "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "sliding_window": 4096,
        "tie_word_embeddings": False, "torch_dtype": "bfloat16", "use_cache": True,
        "vocab_size": 32000},
        {"head_dim": 128, "sliding_window": 4096, "rope_scaling": None, "qkv_bias": False}),
    "gpt2": ({
        "activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"],
        "attn_pdrop": 0.1, "bos_token_id": 50256, "embd_pdrop": 0.1, "eos_token_id": 50256,
        "initializer_range": 0.02, "layer_norm_epsilon": 1e-05, "model_type": "gpt2",
        "n_ctx": 1024, "n_embd": 768, "n_head": 12, "n_layer": 12, "n_positions": 1024,
        "resid_pdrop": 0.1, "summary_activation": None, "summary_type": "cls_index",
        "task_specific_params": {"text-generation": {"do_sample": True, "max_length": 50}},
        "vocab_size": 50257},
        {"n_embd": 768, "n_inner": None, "tie_word_embeddings": True, "eos_token_id": 50256}),
    "bert-base-uncased": ({
        "architectures": ["BertForMaskedLM"], "attention_probs_dropout_prob": 0.1,
        "gradient_checkpointing": False, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
        "hidden_size": 768, "initializer_range": 0.02, "intermediate_size": 3072,
        "layer_norm_eps": 1e-12, "max_position_embeddings": 512, "model_type": "bert",
        "num_attention_heads": 12, "num_hidden_layers": 12, "pad_token_id": 0,
        "position_embedding_type": "absolute", "transformers_version": "4.6.0.dev0",
        "type_vocab_size": 2, "use_cache": True, "vocab_size": 30522},
        {"hidden_size": 768, "type_vocab_size": 2, "layer_norm_eps": 1e-12}),
}


@pytest.mark.parametrize("name", sorted(HUB_CONFIGS))
def test_hub_configs(name):
    raw, expected = HUB_CONFIGS[name]
    c = load_config(raw)
    assert {k: getattr(c, k) for k in expected} == expected
    assert "architectures" in c.extra  # kept, not interpreted


@pytest.mark.parametrize("key, value, message", [
    ("hidden_size", "64", "'hidden_size' must be an integer, got '64'"),
    ("num_hidden_layers", True, "'num_hidden_layers' must be an integer"),
    ("num_hidden_layers", 2.0, "'num_hidden_layers' must be an integer"),
    ("num_attention_heads", 0, "'num_attention_heads' must be >= 1"),
    ("rms_norm_eps", "1e-6", "'rms_norm_eps' must be a finite number"),
    ("tie_word_embeddings", "yes", "'tie_word_embeddings' must be true or false"),
    ("hidden_act", 3, "'hidden_act' must be a string"),
    ("vocab_size", None, "'vocab_size' is required .got null."),
    ("num_key_value_heads", 3, r"num_attention_heads \(4\) must be a multiple of "
                               r"num_key_value_heads \(3\)"),
])
def test_wrong_types_name_the_key(key, value, message):
    with pytest.raises(ValueError, match=message):
        load_config({**LLAMA, key: value})


def test_required_keys_and_passthrough(tmp_path):
    with pytest.raises(ValueError, match="'model_type' is required"):
        load_config({k: v for k, v in LLAMA.items() if k != "model_type"})
    with pytest.raises(ValueError, match="'intermediate_size' is required"):
        load_config({k: v for k, v in LLAMA.items() if k != "intermediate_size"})
    c = load_config({**LLAMA, "eos_token_id": [128001, 128009], "bos_token_id": 128000,
                     "torch_dtype": "bfloat16", "architectures": ["LlamaForCausalLM"]})
    assert (c.eos_token_id, c.bos_token_id, c.torch_dtype, c.dtype) == \
        ([128001, 128009], 128000, "bfloat16", None)
    assert c.extra == {"architectures": ["LlamaForCausalLM"]}
    # unknown types load unchecked (load() is where they are refused)
    other = load_config({"model_type": "t5", "d_model": 512})
    assert (other.model_type, other.d_model) == ("t5", 512)


def test_config_from_files(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(TINY_GPT2))
    assert load_config(tmp_path).n_embd == 8
    assert load_config(str(tmp_path / "config.json")).n_embd == 8
    with pytest.raises(FileNotFoundError, match="no such file or directory.*nowhere"):
        load_config(tmp_path / "nowhere")
    (tmp_path / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match="has no config.json"):
        load_config(tmp_path)
    (tmp_path / "config.json").write_bytes(b"{\xff")
    with pytest.raises(ValueError, match="not valid UTF-8 JSON"):
        load_config(tmp_path)
    (tmp_path / "config.json").write_text("[]")
    with pytest.raises(ValueError, match="must be a JSON object"):
        load_config(tmp_path)
    with pytest.raises(TypeError, match="expected a path or a dict"):
        load_config(3)


# -- fastattn.load ---------------------------------------------------------------------------------

def test_load_dispatches_on_model_type(tmp_path, rng, monkeypatch):
    tensors = random_tensors(rng, 4)
    save_checkpoint(tmp_path, TINY_GPT2, tensors, shards=2)
    calls = []

    def fake_build(config, source):
        calls.append(config)
        return {name: source[name] for name in source.keys()}

    monkeypatch.setitem(loading.FAMILIES, "gpt2",
                        dataclasses.replace(loading.FAMILIES["gpt2"], build=fake_build))
    model = fastattn.load(tmp_path)
    assert [c.model_type for c in calls] == ["gpt2"] and calls[0].n_embd == 8
    assert sorted(model) == sorted(tensors)
    for name, value in tensors.items():
        np.testing.assert_array_equal(model[name], value)
        assert isinstance(_owner(model[name]), mmap.mmap)  # still mapped after load returns


def test_load_errors(tmp_path, rng, monkeypatch):
    with pytest.raises(FileNotFoundError, match="no such model directory.*nowhere"):
        fastattn.load(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="has no config.json"):
        fastattn.load(tmp_path)
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError, match="is not a directory"):
        fastattn.load(tmp_path / "file")
    save_checkpoint(tmp_path, {"model_type": "t5"}, random_tensors(rng, 1))
    with pytest.raises(ValueError, match="model_type 't5' is not supported; supported: bert, "
                                         "gpt2, llama, mistral, qwen2"):
        fastattn.load(tmp_path)
    monkeypatch.setitem(loading.FAMILIES, "llama", dataclasses.replace(
        loading.FAMILIES["llama"], build=lambda config, source: "built"))
    save_checkpoint(tmp_path, LLAMA, random_tensors(rng, 1))
    assert fastattn.load(tmp_path) == "built"


def test_builder_registry_resolves_lazily(monkeypatch):
    toy = dataclasses.replace(loading.FAMILIES["gpt2"],
                              build="fastattn.io.safetensors:bf16_to_float32")
    monkeypatch.setitem(loading.FAMILIES, "toy", toy)
    assert loading.builder_for("toy") is bf16_to_float32
    monkeypatch.setitem(loading.FAMILIES, "toy2", dataclasses.replace(
        toy, build="fastattn.models.config:ModelConfig.to_dict"))
    assert loading.builder_for("toy2") is fastattn.models.config.ModelConfig.to_dict
    assert set(loading.FAMILIES) >= {"gpt2", "llama", "mistral", "qwen2", "bert"}
    assert loading.FAMILIES["bert"].build == "fastattn.models.bert:BertModel.from_weights"


# -- end to end: load() gives the model the builders give from the same tensors ----------------

def bert_checkpoint(rng, *, vocab=40, hidden=16, heads=2, inter=24, layers=2, positions=20):
    config = dict(BERT, hidden_size=hidden, num_attention_heads=heads, intermediate_size=inter,
                  num_hidden_layers=layers, max_position_embeddings=positions, vocab_size=vocab)
    return config, testing.random_checkpoint(config, rng, prefix="bert.", std=0.2,
                                             bias_std=0.2, gain_std=0.2)


def _to_rope_parameters(config):
    """The same config as transformers 5.x writes it: one rope_parameters dict."""
    config = dict(config)
    scaling = config.pop("rope_scaling") or {"rope_type": "default"}
    config["rope_parameters"] = {**scaling, "rope_theta": config.pop("rope_theta")}
    return config


def _decoder_cases():
    from conftest import gpt2_checkpoint, llama_checkpoint
    llama3 = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
              "high_freq_factor": 4.0, "original_max_position_embeddings": 16}
    return {
        "gpt2": lambda rng: gpt2_checkpoint(rng),
        "gpt2-untied-prefixed": lambda rng: gpt2_checkpoint(rng, tied=False,
                                                            prefix="transformer."),
        "llama-gqa-tied": lambda rng: llama_checkpoint(rng, kv_heads=1, tied=True),
        "llama3-scaling-5.x": lambda rng: (lambda c, t: (_to_rope_parameters(c), t))(
            *llama_checkpoint(rng, rope_theta=500000.0, rope_scaling=llama3)),
        "mistral-window": lambda rng: llama_checkpoint(rng, "mistral", window=5),
        "qwen2-bias": lambda rng: llama_checkpoint(rng, "qwen2", heads=4, kv_heads=4,
                                                   head_dim=16),
        "bert": bert_checkpoint,
    }


E2E_CASES = ["gpt2", "gpt2-untied-prefixed", "llama-gqa-tied", "llama3-scaling-5.x",
             "mistral-window", "qwen2-bias", "bert"]


@pytest.mark.parametrize("dtype, shards", [("F32", 1), ("F32", 3), ("BF16", 2)])
@pytest.mark.parametrize("case", E2E_CASES)
def test_load_equals_building_from_the_tensors(tmp_path, rng, case, dtype, shards):
    pytest.importorskip("fastattn.models")  # the layers need the matmul/attention/rope kernels
    from fastattn.models import BertModel, build_gpt2, build_llama
    config, tensors = _decoder_cases()[case](rng)
    save_checkpoint(tmp_path, config, tensors, dtype=dtype, shards=shards)
    model = fastattn.load(tmp_path)
    if dtype == "BF16":  # what the file holds: each value rounded to bfloat16
        tensors = {n: bf16_to_float32(float32_to_bf16(v)) for n, v in tensors.items()}
    c = load_config(config)
    build = {"gpt2": build_gpt2, "bert": BertModel.from_weights}.get(c.model_type, build_llama)
    direct = build(c, tensors)
    assert type(model) is type(direct)
    ids = rng.integers(0, c.vocab_size, (2, 9))
    # same float32 weights, same kernels: bit-identical outputs
    np.testing.assert_array_equal(model(ids), direct(ids))

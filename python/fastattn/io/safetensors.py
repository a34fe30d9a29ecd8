"""safetensors files: a memory-mapped reader and a writer, NumPy only.

The format (https://huggingface.co/docs/safetensors):

    [8 bytes]  N, unsigned little-endian 64-bit: the header's length
    [N bytes]  UTF-8 JSON object {name: {"dtype": "F32", "shape": [..], "data_offsets": [b, e]},
               "__metadata__": {str: str}} (optional metadata), padded with spaces
    [rest]     the data buffer; tensor `name` is bytes [b, e) of it, C order, little-endian

`SafetensorsFile` maps the whole file read-only (`mmap`; or, with mmap=False, reads its data
buffer into memory once) and validates the header completely before handing out anything:
every tensor is then a NumPy view of the mapping (zero-copy, pages read on first touch) or of
the buffer, and no offset can point outside the file. `__getitem__` gives float32
(F32 as the view itself, F16 / BF16 / F64 converted); `raw` gives the stored dtype (BF16 as
uint16: NumPy has no bfloat16).

Why not the `safetensors` package at run time: its NumPy API (`safe_open(..., "np")`,
`load_file`) copies each tensor into memory instead of viewing the mapping and cannot return
BF16 (NumPy has no such dtype), and the format is small enough to read in ~100 lines.
"""
from __future__ import annotations

import json
import mmap as _mmap   # (`mmap` is SafetensorsFile's keyword)
import os
import struct
import uuid
from collections.abc import Mapping

import numpy as np

from .json_fields import brief, no_duplicate_keys

# safetensors dtype code -> little-endian NumPy dtype of the stored elements
# (BF16 is stored as its raw 16 bits).
DTYPES = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
    "U64": np.dtype("<u8"), "U32": np.dtype("<u4"), "U16": np.dtype("<u2"), "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
FLOAT_CODES = ("F64", "F32", "F16", "BF16")
# (NumPy kind, itemsize) -> safetensors code, for the writer (bfloat16 has no NumPy dtype).
_CODES = {(DTYPES[code].kind, DTYPES[code].itemsize): code for code in DTYPES if code != "BF16"}

HEADER_LENGTH_BYTES = 8
# The reference implementation refuses headers above 100 MB; so do we, so that a corrupt length
# cannot make us read gigabytes of "JSON".
MAX_HEADER_BYTES = 100_000_000
# NumPy's limits for one array (NPY_MAXDIMS: 64 since NumPy 2, 32 before; sizes are npy_intp):
# a shape beyond them would pass at open and fail only when the tensor is read. Checking the
# number of dimensions first also bounds the work on a crafted shape: multiplying thousands of
# huge dimensions is quadratic big-integer arithmetic (20 000 dimensions of 2**63: over a
# second; at the 100 MB header limit, hours).
MAX_NDIM = 64 if int(np.__version__.split(".")[0]) >= 2 else 32
MAX_BYTES = 2**63 - 1   # the product of the non-zero dimensions times the itemsize, at most


def bf16_to_float32(bits: np.ndarray) -> np.ndarray:
    """bfloat16 bit patterns (uint16) -> float32, exactly: bf16 is the top half of a float32."""
    return (bits.astype(np.uint32) << 16).view(np.float32)


def float32_to_bf16(x: np.ndarray) -> np.ndarray:
    """float32 (or float64) -> bfloat16 bit patterns (uint16), rounding to nearest, ties to even.

    Adding 0x7FFF + (bit 16) to the float32 bits and truncating rounds the dropped 16 bits half
    to even; a carry out of the mantissa bumps the exponent, and past the largest bf16 it lands
    exactly on infinity (0x7F80), as IEEE rounding does. NaNs are not rounded (the carry could
    turn one into infinity): they keep sign and top payload bits and get the quiet bit.
    float64 goes through float32 first; where that rounding lands exactly on a bf16 tie, the
    float32 bits move one ulp towards the exact value, so the tie breaks the way the exact value
    lies (rounding twice would otherwise break it to even, off by one bf16 ulp)."""
    x = np.asarray(x)
    with np.errstate(over="ignore"):  # beyond float32's range is beyond bf16's too: inf
        x32 = x.astype(np.float32)
    u = x32.view(np.uint32)
    if x.dtype.itemsize > 4:
        tie = (u & np.uint32(0xFFFF)) == 0x8000
        with np.errstate(invalid="ignore"):
            above = np.abs(x) > np.abs(x32.astype(x.dtype))
            below = np.abs(x) < np.abs(x32.astype(x.dtype))
        u = np.where(tie & above, u + np.uint32(1), np.where(tie & below, u - np.uint32(1), u))
    rounded = ((u + (np.uint32(0x7FFF) + ((u >> 16) & np.uint32(1)))) >> 16).astype(np.uint16)
    quiet_nan = ((u >> 16) | np.uint32(0x0040)).astype(np.uint16)
    return np.where(np.isnan(x32), quiet_nan, rounded)


def _fail(path, message: str):
    raise ValueError(f"safetensors file {os.fspath(path)!r}: {message}")


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _shape_error(shape, itemsize: int) -> str | None:
    """Why `shape` (a header value) is no NumPy shape of elements of `itemsize` bytes, or None.
    Each check runs before the next needs it: the length before looking at the items, the
    items' range before multiplying them, and the product stops at the first factor past
    MAX_BYTES, so no step costs more than O(MAX_NDIM) small multiplications."""
    if not isinstance(shape, list):
        return f"shape must be a list of integers in [0, 2**63), got {brief.repr(shape)}"
    if len(shape) > MAX_NDIM:
        return f"shape has {len(shape)} dimensions, more than NumPy's limit of {MAX_NDIM}"
    if not all(_is_count(n) and n <= MAX_BYTES for n in shape):
        return f"shape must be a list of integers in [0, 2**63), got {brief.repr(shape)}"
    total = itemsize
    for n in shape:
        if n:   # NumPy bounds the product of the non-zero dimensions, even when one is 0
            total *= n
            if total > MAX_BYTES:
                return (f"shape {brief.repr(shape)} describes more than 2**63 - 1 bytes "
                        "(NumPy's limit for one array)")
    return None


def parse_header(path, header: bytes, data_size: int):
    """(entries, metadata) from a header's bytes, every entry checked against a data buffer of
    `data_size` bytes: entries maps name -> (code, shape, begin, end)."""
    try:
        text = header.decode("utf-8")
    except UnicodeDecodeError as e:
        _fail(path, f"the header is not UTF-8 ({e.reason} at byte {e.start})")
    try:
        obj = json.loads(text, object_pairs_hook=no_duplicate_keys)
    except ValueError as e:  # json.JSONDecodeError is a ValueError, and so are duplicates
        _fail(path, f"the header is not valid JSON ({e})")
    except RecursionError:  # "[[[[..." nested deeper than the parser's recursion limit
        _fail(path, "the header is not valid JSON (nested too deeply)")
    if not isinstance(obj, dict):
        _fail(path, f"the header must be a JSON object, got {type(obj).__name__}")
    metadata = obj.pop("__metadata__", None)
    if metadata is not None and not (isinstance(metadata, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())):
        _fail(path, "__metadata__ must be an object of string values")
    entries = {}
    for name, info in obj.items():
        def bad(message):
            _fail(path, f"tensor {name!r}: {message}")
        if not isinstance(info, dict):
            bad(f"the entry must be an object, got {type(info).__name__}")
        for field in ("dtype", "shape", "data_offsets"):
            if field not in info:
                bad(f"the entry has no {field!r}")
        code, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if not (isinstance(code, str) and code in DTYPES):
            bad(f"unsupported dtype {brief.repr(code)}; supported: {', '.join(DTYPES)}")
        problem = _shape_error(shape, DTYPES[code].itemsize)
        if problem:
            bad(problem)
        if not (isinstance(offsets, list) and len(offsets) == 2
                and all(_is_count(n) for n in offsets) and offsets[0] <= offsets[1]):
            bad(f"data_offsets must be [begin, end] with 0 <= begin <= end, got "
                f"{brief.repr(offsets)}")
        begin, end = offsets
        # (shape and itemsize are bounded now: the product is a small integer)
        nbytes = DTYPES[code].itemsize
        for n in shape:
            nbytes *= n
        if end - begin != nbytes:
            bad(f"data_offsets {brief.repr(offsets)} span {brief.repr(end - begin)} bytes "
                f"but shape {shape} of {code} needs {nbytes}")
        if end > data_size:
            bad(f"data_offsets {brief.repr(offsets)} end past the data buffer "
                f"({data_size} bytes)")
        entries[name] = (code, tuple(shape), begin, end)
    # Sorted by begin (then end), each non-empty range must start at or after the end of the
    # previous one. Empty tensors occupy no bytes and can sit anywhere.
    ranges = sorted((begin, end, name) for name, (_, _, begin, end) in entries.items()
                    if end > begin)
    for (b0, e0, first), (b1, e1, second) in zip(ranges, ranges[1:]):
        if b1 < e0:
            _fail(path, f"tensors {first!r} and {second!r} overlap (bytes [{b0}, {e0}) and "
                        f"[{b1}, {e1}) of the data buffer)")
    return entries, metadata or {}


class SafetensorsFile(Mapping):
    """A read-only safetensors file: a mapping name -> float32 ndarray.

    f[name] is float32: F32 tensors are zero-copy views of the file's data (read-only), F16,
    BF16 and F64 are converted; integer and bool tensors come in their own dtype. f.raw(name)
    is the stored data as a view (BF16 as uint16 bit patterns). The header is validated
    completely at open: any inconsistency raises ValueError naming the file and the tensor.

    mmap=True (default) maps the file: opening is instant whatever its size, pages are read on
    first touch and shared with every process mapping the same file. But the views are the
    file: if it is truncated while mapped (a `cp` over it, a partial download), touching a
    lost page kills the process with SIGBUS, and a file rewritten in place changes the
    tensors under the model. mmap=False reads the data buffer into memory once (RAM = the
    file's size; no page sharing): the tensors are then views of that private copy, and the
    file can change or vanish freely.

    Arrays handed out stay valid after close(): they keep the mapping (or buffer) alive."""

    def __init__(self, path, *, mmap: bool = True):
        self.path = os.fspath(path)
        with open(self.path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < HEADER_LENGTH_BYTES:
                _fail(self.path, f"the file has {size} bytes, fewer than the 8-byte header length")
            (n,) = struct.unpack("<Q", f.read(HEADER_LENGTH_BYTES))
            if n > size - HEADER_LENGTH_BYTES:
                _fail(self.path, f"the header length {n} exceeds the {size - 8} bytes after it "
                                 "(truncated or not a safetensors file)")
            if n > MAX_HEADER_BYTES:
                _fail(self.path, f"the header length {n} exceeds the {MAX_HEADER_BYTES}-byte limit")
            header = f.read(n)
            data_start = HEADER_LENGTH_BYTES + n
            self._entries, self.metadata = parse_header(self.path, header, size - data_start)
            # The header was checked against the size fstat gave; the file may have shrunk
            # since. What is mapped or read now is what the tensors will view, so it is checked
            # again: every tensor must end inside it.
            if mmap:
                # The file is at least 8 bytes long, so the mapping is never empty (mmap
                # refuses 0 bytes).
                try:
                    self._buffer = _mmap.mmap(f.fileno(), 0, access=_mmap.ACCESS_READ)
                except ValueError as e:   # emptied since fstat: "cannot mmap an empty file"
                    _fail(self.path, f"cannot be mapped ({e})")
                self._offset = data_start
            else:
                self._buffer = f.read(size - data_start)   # bytes: read-only views, like a map
                self._offset = 0
        self.mmap = mmap
        self.data_size = len(self._buffer) - self._offset   # bytes in the data buffer
        end, name = max(((end, name) for name, (_, _, _, end) in self._entries.items()),
                        default=(0, None))
        if end > self.data_size:
            self.close()
            _fail(self.path, f"tensor {name!r} ends at byte {end} of the data buffer, but the "
                             f"file now holds only {self.data_size} (it shrank while opened)")

    # -- mapping interface -------------------------------------------------------------------
    def keys(self):
        return self._entries.keys()

    def __iter__(self):
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name) -> bool:
        return name in self._entries

    def __getitem__(self, name: str) -> np.ndarray:
        code = self._entry(name)[0]
        raw = self.raw(name)
        if code == "F32":
            if raw.ctypes.data % 4 == 0:
                return raw
            return raw.astype(np.float32)  # only in files with misaligned data: an aligned copy
        if code == "BF16":
            return bf16_to_float32(raw)
        if code in FLOAT_CODES:
            return raw.astype(np.float32)
        return raw

    # -- per-tensor information --------------------------------------------------------------
    def _entry(self, name: str):
        try:
            return self._entries[name]
        except KeyError:
            raise KeyError(f"safetensors file {self.path!r} has no tensor {name!r}") from None

    def dtype(self, name: str) -> str:
        """The stored dtype code ("F32", "BF16", ...)."""
        return self._entry(name)[0]

    def shape(self, name: str) -> tuple:
        return self._entry(name)[1]

    def raw(self, name: str) -> np.ndarray:
        """The stored elements as a read-only view of the mapping (BF16: uint16 bit patterns)."""
        code, shape, begin, end = self._entry(name)
        if self._buffer is None:
            raise ValueError(f"safetensors file {self.path!r} is closed")
        dt = DTYPES[code]
        array = np.frombuffer(self._buffer, dtype=dt, count=(end - begin) // dt.itemsize,
                              offset=self._offset + begin).reshape(shape)
        if code == "BOOL" and array.size and array.view(np.uint8).max() > 1:
            _fail(self.path, f"tensor {name!r}: BOOL bytes must be 0 or 1")
        return array

    def release(self, name: str) -> None:
        """Hands the pages of tensor `name` that this process has read back to the kernel
        (madvise MADV_DONTNEED on the whole pages inside its bytes): for a tensor that has been
        copied (packed, converted, quantized) and is not read again. The mapping is read-only
        and file-backed, so nothing is lost: a later read faults the pages in again from the
        page cache or the file. Without it a mapped tensor's pages stay resident (counted in
        RSS as file pages) next to the copy for as long as the mapping lives. A no-op for
        mmap=False (the data is one bytes object) and where madvise is not available."""
        begin, end = self._entry(name)[2:]
        if not isinstance(self._buffer, _mmap.mmap) or not hasattr(_mmap, "MADV_DONTNEED"):
            return
        page = _mmap.PAGESIZE
        # only pages wholly inside the tensor: its neighbours' pages may still be needed
        first = -(-(self._offset + begin) // page) * page
        last = (self._offset + end) // page * page
        if last > first:
            self._buffer.madvise(_mmap.MADV_DONTNEED, first, last - first)

    # -- lifetime ----------------------------------------------------------------------------
    def close(self) -> None:
        """Drops this object's mapping (or buffer). Arrays already handed out keep it alive
        (they hold a reference through .base), so the memory is freed when the last goes."""
        if isinstance(self._buffer, _mmap.mmap):
            try:
                self._buffer.close()
            except BufferError:
                pass  # views exist; the mapping closes when they are collected
        self._buffer = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self) -> str:
        return (f"SafetensorsFile({self.path!r}, {len(self)} tensors"
                f"{'' if self.mmap else ', in memory'})")


def _stored(name: str, array, dtype: str | None, code: str | None = None):
    """(code, C-contiguous little-endian ndarray of the bytes to write) for one tensor; `code`
    ("BF16" or "F16"): the array is those 16-bit patterns already (uint16), written as they
    are."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"save_safetensors: tensor {name!r} must be a numpy.ndarray, "
                        f"got {type(array).__name__}")
    if code is not None:
        if code not in ("BF16", "F16"):
            raise ValueError(f"save_safetensors: codes[{name!r}] must be 'BF16' or 'F16', "
                             f"got {code!r}")
        if array.dtype != np.uint16:
            raise TypeError(f"save_safetensors: tensor {name!r} given as {code} bit patterns "
                            f"must be uint16, got {array.dtype}")
        return code, np.require(array, dtype=np.dtype("<u2"), requirements="C")
    is_float = array.dtype.kind == "f"
    if dtype is not None and is_float:
        if dtype == "BF16":
            return "BF16", float32_to_bf16(array)
        with np.errstate(over="ignore"):  # overflow to inf, as IEEE rounding gives
            array = array.astype(DTYPES[dtype], copy=False)
    code = _CODES.get((array.dtype.kind, array.dtype.itemsize))
    if code is None:
        raise TypeError(f"save_safetensors: tensor {name!r} has dtype {array.dtype}, which "
                        "safetensors cannot store")
    # (np.ascontiguousarray would turn a 0-d array into a 1-d one)
    return code, np.require(array, dtype=DTYPES[code], requirements="C")


def save_safetensors(path, tensors: Mapping, metadata: Mapping | None = None,
                     dtype: str | None = None, codes: Mapping | None = None) -> None:
    """Writes `tensors` (name -> ndarray) to a safetensors file at `path`.

    dtype None stores each array's own dtype; "F32", "F16" or "BF16" converts every floating
    array (BF16 rounds to nearest even; integer / bool arrays are stored as they are).
    codes: name -> "BF16" / "F16" for uint16 arrays that are those bit patterns already
    (a 16-bit weight's storage), written unchanged under that dtype.
    metadata: str -> str, stored as "__metadata__". The header lists tensors by name; the data
    buffer holds them by decreasing element size, then name, so that every tensor starts at a
    multiple of its element size (the header is space-padded to a multiple of 8 bytes) and
    readers can view it in place. The file is written next to `path` and renamed over it, so
    an interrupted write never leaves a truncated file behind."""
    if dtype is not None and dtype not in ("F32", "F16", "BF16"):
        raise ValueError(f"save_safetensors: dtype must be None, 'F32', 'F16' or 'BF16', "
                         f"got {dtype!r}")
    if not isinstance(tensors, Mapping):
        raise TypeError(f"save_safetensors: tensors must be a mapping name -> ndarray, "
                        f"got {type(tensors).__name__}")
    if metadata is not None and not (isinstance(metadata, Mapping) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())):
        raise TypeError("save_safetensors: metadata must be a mapping of str to str")
    stored = {}
    for name, array in tensors.items():
        if not isinstance(name, str) or name == "__metadata__":
            raise ValueError(f"save_safetensors: invalid tensor name {name!r}")
        stored[name] = _stored(name, array, dtype, (codes or {}).get(name))
    order = sorted(stored, key=lambda n: (-stored[n][1].itemsize, n))
    offsets, position = {}, 0
    for name in order:
        offsets[name] = (position, position + stored[name][1].nbytes)
        position += stored[name][1].nbytes
    header = {"__metadata__": dict(metadata)} if metadata else {}
    for name in sorted(stored):
        code, array = stored[name]
        header[name] = {"dtype": code, "shape": list(array.shape),
                        "data_offsets": list(offsets[name])}
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)

    path = os.fspath(path)
    tmp = f"{path}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        with open(tmp, "xb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for name in order:
                f.write(memoryview(stored[name][1].reshape(-1)).cast("B"))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise

"""Checked access to a checkpoint's tensors for model builders, and the weight format of their
Linear layers.

`take_listed(source, shapes, ignore, weights=)` checks every tensor of the family's checkpoint
schema (models/<family>/schema.py: what a builder reads and what the schema lists cannot
differ) and returns a `Tensors` mapping: ``t[name]`` is the tensor as float32 (embeddings,
norms, biases, convolutions: converted on first use), ``t.linear(base)`` the Linear layer
``base.weight`` / ``base.bias`` with its matrix in the load's weight format
(docs/quantization.md):

- ``weights="float32"`` packs the float32 weight (today's layout); ``"bfloat16"``,
  ``"float16"``, ``"q8"``, ``"q4"`` convert / quantize it at load;
- ``"as-stored"`` keeps the checkpoint's own format: a BF16 / F16 tensor stays 16-bit (its
  bytes viewed in place in the memory-mapped file when the layout is already the kernel's,
  nn.Linear's (out, in)), a tensor of a quantized fastattn file (``fastattn quantize``) stays
  quantized, anything else is float32.

A quantized file stores a matrix ``X`` as ``X`` (int8 quants for q8, uint8 nibble pairs for
q4, in the canonical (out, in) storage whatever the family's layout) plus ``X.scales``; those
are recognised from the file itself (a ``.scales`` companion and an int8 / uint8 dtype), so
no configuration can disagree with the bytes.

Memory: whenever a matrix is copied out of a memory-mapped file (packed, converted,
quantized) the file pages it read are handed back to the kernel at once
(`source.release(name)`: madvise DONTNEED), so a load holds each weight once, in its format
(docs/quantization.md, "Memory").
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..ops import PackedMatrix
from ..weight_formats import WEIGHT_FORMATS

# load's choices: a format, or each matrix's own
LOAD_FORMATS = ("as-stored",) + WEIGHT_FORMATS
# the suffix of a quantized matrix's scales in a fastattn file
SCALES = ".scales"
# stored dtype code -> the format its matrices have "as stored"
_STORED_FORMAT = {"BF16": "bfloat16", "F16": "float16", "I8": "q8", "U8": "q4"}
_NUMPY_CODES = {"float32": "F32", "float16": "F16", "float64": "F64", "int8": "I8",
                "uint8": "U8"}


def check_format(where: str, weights) -> str:
    """`weights` if it is one of LOAD_FORMATS; else ValueError naming the choices."""
    if not isinstance(weights, str) or weights not in LOAD_FORMATS:
        raise ValueError(f"{where}: weights must be one of {', '.join(LOAD_FORMATS)}, "
                         f"got {weights!r}")
    return weights


def _code(source, name: str) -> str:
    """The stored dtype code of `name` ("F32", "BF16", "I8", ...): a checkpoint's own, or the
    NumPy dtype's for a dict of arrays."""
    if hasattr(source, "dtype"):
        return source.dtype(name)
    return _NUMPY_CODES.get(np.asarray(source[name]).dtype.name, "?")


def _raw(source, name: str) -> np.ndarray:
    """The stored elements of `name` without conversion (BF16 as uint16 bit patterns)."""
    return source.raw(name) if hasattr(source, "raw") else np.asarray(source[name])


def _bits(source, name: str) -> np.ndarray:
    """A BF16 / F16 tensor's 16-bit patterns as uint16 (the formats' storage dtype)."""
    array = _raw(source, name)
    return array.view(np.uint16) if array.dtype == np.float16 else array


def _shape(source, name: str) -> tuple:
    if hasattr(source, "shape"):
        return tuple(source.shape(name))
    return tuple(np.shape(source[name]))


class Tensors(Mapping):
    """take_listed's result: name -> float32 array for every listed tensor, and `matrix` /
    `linear` for the Linear weights in the load's format (see the module docstring)."""

    def __init__(self, source, shapes: dict, weights: str):
        self.source = source
        self.shapes = dict(shapes)
        self.weights = weights
        # names whose storage is a quantized fastattn matrix (`X` + `X.scales`)
        names = set(source.keys())
        self.quantized = {n for n in self.shapes if n + SCALES in names
                          and _code(source, n) in ("I8", "U8")}
        self._float32: dict[str, np.ndarray] = {}
        # A checkpoint read into memory (mmap=False): everything the model keeps is copied out
        # of the file's buffer, so the buffer is freed once the load is done instead of
        # staying alive (the whole file) under the views of the few tensors kept in place.
        self._own = getattr(source, "mmap", True) is False

    # -- mapping: float32 tensors ------------------------------------------------------------
    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self.shapes:
            raise KeyError(name)
        if name not in self._float32:
            if name in self.quantized:
                raise ValueError(f"checkpoint: tensor {name!r} is a quantized matrix (with "
                                 f"{name + SCALES!r}), which this model reads as a plain "
                                 "tensor: quantize only Linear weights")
            array = np.asarray(self.source[name])   # a checkpoint converts 16-bit tensors
            copied = (_code(self.source, name) != "F32" or array.dtype != np.float32
                      or not array.flags.c_contiguous)
            array = np.ascontiguousarray(array, dtype=np.float32)
            if copied:
                self._release(name)
            elif self._own:
                array = array.copy()
            self._float32[name] = array
        return self._float32[name]

    def __iter__(self):
        return iter(self.shapes)

    def __len__(self) -> int:
        return len(self.shapes)

    def __contains__(self, name) -> bool:
        return name in self.shapes

    # -- matrices in the load's format -------------------------------------------------------
    def _release(self, name: str) -> None:
        release = getattr(self.source, "release", None)
        if release is not None:
            release(name)
            if name in self.quantized:
                release(name + SCALES)

    def _stored_matrix(self, name: str, k_n: tuple):
        fmt = _STORED_FORMAT[_code(self.source, name)]
        storage = {"weight": _raw(self.source, name), "scales": _raw(self.source, name + SCALES)}
        return PackedMatrix.from_storage(storage, shape=k_n, weights=fmt)

    def _storage(self, name: str, layout: str, fmt: str):
        """(format, storage dict) of `name` when it can be taken as stored in format `fmt`
        (no float32 copy), else None."""
        code = _code(self.source, name)
        if name in self.quantized:
            stored = _STORED_FORMAT[code]
            if fmt in ("as-stored", stored):
                return stored, {"weight": _raw(self.source, name),
                                "scales": _raw(self.source, name + SCALES)}
            return None
        stored = _STORED_FORMAT.get(code)
        if stored in ("bfloat16", "float16") and fmt in ("as-stored", stored):
            bits = _bits(self.source, name)
            # canonical storage is (out, in); GPT-2's Conv1D (in, out) needs a 16-bit transpose
            return stored, bits if layout == "out_in" else np.ascontiguousarray(bits.T)
        return None

    def matrix(self, names, layout: str = "out_in", save_as=None):
        """The PackedMatrix (K = in, N = sum of outs) of the weight(s) `names` (one name or a
        list of names of the same input size, fused side by side: q, k, v), in the load's
        format. `save_as`: the name(s) `fastattn quantize` stores them under (the tied LM head:
        "lm_head.weight"), else the names themselves."""
        names = [names] if isinstance(names, str) else list(names)
        save_as = names if save_as is None else ([save_as] if isinstance(save_as, str)
                                                 else list(save_as))
        record = getattr(self.source, "record_matrix", None)
        sizes = []
        for name, saved in zip(names, save_as):
            shape = self.shapes[name]
            sizes.append((shape[1], shape[0]) if layout == "out_in" else tuple(shape))
            if record is not None:
                record(name, layout, saved)
        k = sizes[0][0]
        if any(s[0] != k for s in sizes):
            raise ValueError(f"checkpoint: fused matrices {names} have different input sizes "
                             f"{[s[0] for s in sizes]}")
        n = sum(s[1] for s in sizes)
        stored = [self._storage(name, layout, self.weights) for name in names]
        if all(s is not None for s in stored) and len({s[0] for s in stored}) == 1:
            fmt = stored[0][0]
            if self._own and len(stored) == 1:    # (a fused matrix is a new array anyway)
                kept = stored[0][1]
                stored = [(fmt, {key: a.copy() for key, a in kept.items()}
                           if isinstance(kept, dict) else kept.copy())]
            if fmt in ("q8", "q4"):
                storage = {key: (stored[0][1][key] if len(stored) == 1 else
                                 np.concatenate([s[1][key] for s in stored]))
                           for key in ("weight", "scales")}
            else:
                bits = [s[1] for s in stored]
                storage = {"weight": bits[0] if len(bits) == 1 else np.concatenate(bits)}
            pm = PackedMatrix.from_storage(storage, shape=(k, n), weights=fmt)
            # copied (fused, or a 16-bit Conv1D transposed): the file pages are done with
            if len(stored) > 1 or (layout != "out_in" and fmt not in ("q8", "q4")):
                for name in names:
                    self._release(name)
            return pm
        # float32 (converted or dequantized) in the kernel's (in, out) or (out, in) order
        fmt = self.weights
        if fmt == "as-stored":   # float32 files; mixed formats in one fused matrix
            fmt = "float32"
        parts = []
        for name, (kk, nn) in zip(names, sizes):
            if name in self.quantized:
                parts.append(self._stored_matrix(name, (kk, nn)).unpacked().T)
            else:
                array = np.asarray(self.source[name])
                parts.append(array if layout == "out_in" else array.T)
        w = parts[0] if len(parts) == 1 else np.concatenate(parts)
        pm = PackedMatrix(w, transpose=True, weights=fmt)
        del w, parts
        for name in names:
            self._release(name)
        return pm

    def bias(self, bases) -> np.ndarray | None:
        """The concatenated biases `base.bias` of `bases` (zeros for a base without one), or
        None when none has one."""
        bases = [bases] if isinstance(bases, str) else list(bases)
        if not any(b + ".bias" in self.shapes for b in bases):
            return None
        return np.concatenate([
            self[b + ".bias"] if b + ".bias" in self.shapes
            else np.zeros(self.shapes[b + ".weight"][0], np.float32) for b in bases])

    def linear(self, bases, layout: str = "out_in", save_as=None):
        """The Linear layer of `bases` (one base name or several fused): weights `base.weight`
        (layout "out_in" as nn.Linear, "in_out" as GPT-2's Conv1D) in the load's format, biases
        `base.bias` when present."""
        from ..layers import Linear
        bases = [bases] if isinstance(bases, str) else list(bases)
        matrix = self.matrix([b + ".weight" for b in bases], layout, save_as)
        return Linear(matrix, self.bias(bases))


class Weights:
    """Which tensors of `source` a builder has checked (`check`, `take`), for refusing the
    ones it does not understand (`check_all_used`)."""

    def __init__(self, source, prefix: str = "", ignore=()):
        self.source = source
        self.prefix = prefix
        self.ignore = tuple(ignore)      # substrings of names that are fine to leave unused
        self.taken: set[str] = set()
        self._name_set = set(source.keys())

    def has(self, name: str) -> bool:
        return self.prefix + name in self._name_set

    def check(self, name: str, shape, quantized: bool = False) -> None:
        """Records `name` as used; ValueError when it is missing or (unless it is a quantized
        matrix, whose storage from_storage checks) its shape is not `shape`."""
        full = self.prefix + name
        if full not in self._name_set:
            raise ValueError(f"checkpoint: missing tensor {full!r}")
        if quantized:
            self.taken.update((full, full + SCALES))
            return
        stored = _shape(self.source, full)
        if stored != tuple(shape):
            raise ValueError(f"checkpoint: tensor {full!r} has shape {stored}, "
                             f"expected {tuple(shape)}")
        self.taken.add(full)

    def take(self, name: str, shape) -> np.ndarray:
        self.check(name, shape)
        return np.ascontiguousarray(self.source[self.prefix + name], dtype=np.float32)

    def check_all_used(self) -> None:
        extra = [n for n in self._name_set
                 if n not in self.taken and not any(s in n for s in self.ignore)]
        if extra:
            shown = ", ".join(repr(n) for n in sorted(extra)[:5])
            more = f" (and {len(extra) - 5} more)" if len(extra) > 5 else ""
            raise ValueError(f"checkpoint: unexpected tensor(s) {shown}{more}")


def take_listed(source, shapes: dict, ignore=(), weights: str = "float32") -> Tensors:
    """Every tensor a checkpoint schema lists (`shapes`: name -> shape, names in full) from
    `source`, shape-checked, as a `Tensors` mapping (float32 on access; `linear` / `matrix`
    in format `weights`, one of LOAD_FORMATS); ValueError for a missing tensor, a wrong shape,
    or a tensor of `source` the schema does not list (unless a substring in `ignore` marks it
    as fine to leave, like a causal-mask buffer)."""
    check_format("load", weights)
    t = Tensors(source, shapes, weights)
    w = Weights(source, ignore=ignore)
    for name, shape in shapes.items():
        w.check(name, shape, quantized=name in t.quantized)
    w.check_all_used()
    return t

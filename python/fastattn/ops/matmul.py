"""matmul: batched, transposed, strided float32 products with a fused epilogue, and
PackedMatrix, a weight packed once into the kernel's panel layout."""
from __future__ import annotations

import numpy as np

from .. import _core
from .. import _layout
from .. import _validate as v
from .. import weight_formats as wf
from ..activation_names import KERNEL_ACTIVATIONS
from ..runtime import get_isa, use_isa

_OP = "matmul"
_ACTIVATIONS = (None, *KERNEL_ACTIVATIONS)


class PackedMatrix:
    """A (K, N) right-hand matmul operand, stored once in a weight format.

    ``PackedMatrix(w)`` packs ``w`` (K, N); ``PackedMatrix(w, transpose=True)`` packs ``w.T``
    for a weight stored (N, K) as in PyTorch ``nn.Linear``. ``weights`` chooses the storage
    (docs/weight_formats.md): "float32" (the micro-kernel's panels: ``matmul`` streams them
    without repacking, docs/matmul.md "Performance"), "bfloat16", "float16" (16-bit, round to
    nearest even), "q8" or "q4" (int8 / 4-bit with a float16 scale per block of 32 along K,
    llama.cpp's Q8_0 / Q4_0). The matmul converts while it reads and accumulates in float32.
    The stored copy is independent of ``w``. The float32 panel layout belongs to the ISA path
    active when packing; under another path ``matmul`` repacks once and caches it. The other
    formats are one layout for every path (rows of W^T along K, as ``storage()`` gives them).
    """

    def __init__(self, w: np.ndarray, transpose: bool = False, weights: str = "float32"):
        w = v.float32_array("PackedMatrix", "w", w)
        if w.ndim != 2:
            raise ValueError(f"PackedMatrix: w must be 2-D, got {w.ndim}-D")
        transpose = v.flag("PackedMatrix", "transpose", transpose)
        self._weights = wf.check_format("PackedMatrix", weights)
        b = w.T if transpose else w
        self.shape = (int(b.shape[0]), int(b.shape[1]))  # (K, N)
        self._packs: dict[str, np.ndarray] = {}
        self._storage: dict[str, np.ndarray] = {}
        if self._weights == "float32":
            self._pack(_layout.aligned_or_copy(b))
        else:
            self._storage = wf.encode(b.T, self._weights)

    @classmethod
    def from_storage(cls, storage: dict, shape, weights: str) -> "PackedMatrix":
        """Wraps a weight's canonical storage, as ``storage()`` returns it or as read from a
        safetensors file (read-only memory-mapped views work): no float32 copy, and no copy at
        all for C-contiguous arrays of the storage's dtype (bfloat16 / float16 bits may come as
        uint16 or float16, the scales as float16 or uint16). ``shape`` is (K, N). float32
        storage ({"weight": (N, K)}) is packed into panels (a copy). TypeError / ValueError
        name the key."""
        op = "PackedMatrix.from_storage"
        weights = wf.check_format(op, weights)
        if not isinstance(storage, dict):
            raise TypeError(f"{op}: storage must be a dict of numpy arrays, got "
                            f"{type(storage).__name__}")
        if not (isinstance(shape, (tuple, list)) and len(shape) == 2):
            raise ValueError(f"{op}: shape must be (K, N), got {shape!r}")
        k = v.integer(op, "shape[0]", shape[0], minimum=0)
        n = v.integer(op, "shape[1]", shape[1], minimum=0)
        expected = wf.storage_shapes(weights, k, n)
        if set(storage) != set(expected):
            raise ValueError(f"{op}: {weights} storage has the keys {sorted(expected)}, got "
                             f"{sorted(storage)}")
        arrays = {}
        for name, (dtype, shp) in expected.items():
            x = storage[name]
            if not isinstance(x, np.ndarray):
                raise TypeError(f"{op}: storage[{name!r}] must be a numpy.ndarray, got "
                                f"{type(x).__name__}")
            # 16-bit patterns: uint16 and float16 are the same bytes (safetensors F16 / BF16)
            # (bfloat16 bits only as uint16: a float16 array would be another number format)
            alias = None if (weights, name) == ("bfloat16", "weight") else {
                np.dtype(np.uint16): np.dtype(np.float16),
                np.dtype(np.float16): np.dtype(np.uint16)}.get(dtype)
            if x.dtype != dtype and x.dtype != alias:
                raise TypeError(f"{op}: storage[{name!r}] must be {dtype}"
                                f"{f' (or {alias})' if alias is not None else ''} for "
                                f"{weights}, got {x.dtype}")
            if tuple(x.shape) != shp:
                raise ValueError(f"{op}: storage[{name!r}] has shape {v.shape_str(x.shape)}, "
                                 f"expected {v.shape_str(shp)} for {weights} of shape (K, N) = "
                                 f"{(k, n)}")
            if not (x.flags.c_contiguous and x.flags.aligned):
                x = np.ascontiguousarray(x)  # the kernels read rows along K in place
            arrays[name] = x.view(dtype) if x.dtype != dtype else x
        if weights == "float32":
            return cls(arrays["weight"], transpose=True)
        pm = cls.__new__(cls)
        pm._weights, pm.shape, pm._packs, pm._storage = weights, (k, n), {}, arrays
        return pm

    @property
    def weights(self) -> str:
        """The weight format, one of ``fastattn.WEIGHT_FORMATS``."""
        return self._weights

    def storage(self) -> dict:
        """The format's canonical storage, name -> array (docs/weight_formats.md): out_in, rows
        of W^T along K. float32 / bfloat16 / float16: {"weight"}; q8 / q4: {"weight",
        "scales"}. The held arrays themselves (float32: a new unpacked (N, K) copy)."""
        if self._weights == "float32":
            return {"weight": np.ascontiguousarray(self.unpacked().T)}
        return dict(self._storage)

    def _pack(self, b: np.ndarray) -> np.ndarray:
        k, n = self.shape
        nr = _core.matmul_panel_width()
        data = np.empty(-(-n // nr) * k * nr, dtype=np.float32)
        if data.size:
            _core.matmul_pack_b(b, data)
        self._packs[get_isa()] = data
        return data

    def unpacked(self) -> np.ndarray:
        """The (K, N) matrix in float32 (dequantised: the values matmul multiplies by), a new
        array."""
        k, n = self.shape
        if self._weights != "float32":
            return np.ascontiguousarray(wf.decode(self._storage, self._weights, k).T)
        isa, data = next(iter(self._packs.items()))
        if k == 0:  # no panel rows: reshape(-1, 0, nr) cannot infer the panel count
            return np.zeros((0, n), np.float32)
        with use_isa(isa):
            nr = _core.matmul_panel_width()
        panels = data.reshape(-1, k, nr)
        return np.ascontiguousarray(panels.transpose(1, 0, 2).reshape(k, -1)[:, :n])

    def data(self) -> np.ndarray:
        """The packed float32 panels for the current ISA path (packed now if not yet)."""
        if self._weights != "float32":
            raise ValueError(f"PackedMatrix.data: a {self._weights} matrix has no float32 "
                             f"panels; storage() gives its arrays")
        data = self._packs.get(get_isa())
        return data if data is not None else self._pack(self.unpacked())

    @property
    def nbytes(self) -> int:
        """Bytes held for the weight: the format's storage, scales included."""
        if self._weights != "float32":
            return int(sum(x.nbytes for x in self._storage.values()))
        return int(next(iter(self._packs.values())).nbytes)

    def __repr__(self) -> str:
        if self._weights != "float32":
            return f"PackedMatrix(shape={self.shape}, weights={self._weights!r})"
        return f"PackedMatrix(shape={self.shape}, isa={next(iter(self._packs))!r})"


def matmul(a: np.ndarray, b, *, transpose_a: bool = False, transpose_b: bool = False,
           bias: np.ndarray | None = None, activation: str | None = None,
           residual: np.ndarray | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """C = act(op(a) @ op(b) + bias) + residual, op(x) = x or its transpose (last two axes).

    Shapes as ``np.matmul``: ``(..., M, K) @ (..., K, N) -> (..., M, N)`` with the batch
    dimensions broadcast; a 1-D ``a`` is a row (``(K,)``), a 1-D ``b`` a column. ``b`` may be a
    :class:`PackedMatrix` (a packed (K, N) weight). ``transpose_a`` / ``transpose_b`` read the
    operand transposed through its strides, without a copy (``transpose_b=True`` for a weight
    stored (N, K)). Any strides work; negative and zero strides are read in place.

    Epilogue, fused into the kernel while the output tile is in registers: ``bias`` (N,) is
    added, then ``activation`` (None, "relu", "gelu" (exact), "gelu_tanh", "silu") applied,
    then ``residual`` (the output's shape) added. ``out`` may be ``residual`` itself.

    Accuracy: float32 FMA chains over K; |C - C_exact| <= ~K eps (|a| @ |b|)
    elementwise, eps = 2^-24 (docs/matmul.md, "Accuracy"). Results do not depend on the
    thread count."""
    # The common 2-D call is checked and run in C++ (None: not such a call, e.g. a float32
    # view at a byte offset that is not a multiple of 4, which the path below copies). No
    # Python-side check first: at 32^3 it would cost more than the product.
    y = _core.matmul_2d(a, b, transpose_a, transpose_b, bias, activation, residual, out)
    if y is not None:
        return y
    a = v.float32_array(_OP, "a", a)
    packed = isinstance(b, PackedMatrix)
    if not packed:
        b = v.float32_array(_OP, "b", b)
    transpose_a = v.flag(_OP, "transpose_a", transpose_a)
    transpose_b = v.flag(_OP, "transpose_b", transpose_b)
    if activation is not None and not isinstance(activation, str):
        raise TypeError(f"{_OP}: activation must be None or a str, got {type(activation).__name__}")
    v.one_of(_OP, "activation", activation, _ACTIVATIONS)
    bias = v.optional_float32(_OP, "bias", bias)
    residual = v.optional_float32(_OP, "residual", residual)
    if packed and transpose_b:
        raise ValueError(f"{_OP}: transpose_b does not apply to a PackedMatrix (choose the "
                         f"orientation when packing)")
    b_shape = b.shape if packed else tuple(b.shape)
    for name, x_shape in (("a", a.shape), ("b", b_shape)):
        if len(x_shape) == 0:
            raise ValueError(f"{_OP}: {name} must have at least 1 dimension, got a 0-d array")

    at = np.swapaxes(a, -1, -2) if transpose_a and a.ndim >= 2 else a
    bt = None if packed else (np.swapaxes(b, -1, -2) if transpose_b and b.ndim >= 2 else b)
    bt_shape = b.shape if packed else bt.shape
    a2 = at[None, :] if at.ndim == 1 else at  # a row
    b2 = None if packed else (bt[:, None] if bt.ndim == 1 else bt)  # a column
    b2_shape = (bt_shape[0], 1) if len(bt_shape) == 1 else bt_shape
    M, K = a2.shape[-2:]
    Kb, N = b2_shape[-2:]
    if K != Kb:
        raise ValueError(f"{_OP}: {v.shapes_str(a=a.shape, b=b_shape)}: inner dimensions {K} "
                         f"and {Kb} differ")
    if a2.ndim == 2 and len(b2_shape) == 2:
        batch = ()
    else:
        try:
            batch = np.broadcast_shapes(a2.shape[:-2], tuple(b2_shape[:-2]))
        except ValueError:
            raise ValueError(f"{_OP}: {v.shapes_str(a=a.shape, b=b_shape)}: batch dimensions "
                             f"{v.shape_str(a2.shape[:-2])} and {v.shape_str(b2_shape[:-2])} "
                             f"do not broadcast") from None
    out_shape = tuple(batch) + ((M,) if at.ndim > 1 else ()) + ((N,) if len(bt_shape) > 1 else ())
    if bias is not None:
        v.require_shape(_OP, "bias", bias, (N,))
    if residual is not None:
        v.require_shape(_OP, "residual", residual, out_shape, "(the shape of the output)")
    if out is None:
        out = np.empty(out_shape, dtype=np.float32)
    else:
        out = v.prepare_out(_OP, out, out_shape, {"residual": residual})
        for name, x in (("a", a), ("b", None if packed else b), ("bias", bias)):
            if x is not None and np.may_share_memory(out, x):
                raise ValueError(f"{_OP}: out overlaps {name}; pass a separate array")
    if out.size == 0:
        return out
    if residual is not None and np.may_share_memory(out, residual):
        # in place on the residual: the kernel keeps partial sums in out, so read a copy
        residual = residual.copy()
    if bias is not None:
        bias = _layout.contiguous(bias)

    # Fold a's batch dimensions into its rows when b has none: one large product.
    fold = packed or (len(b2_shape) == 2 and a2.ndim > 2)
    if a2.ndim == 2 and len(b2_shape) == 2 and not packed:
        shape = (M, N)
        a_k = _layout.aligned_or_copy(a2)
        b_k = _layout.aligned_or_copy(b2)
    elif fold:
        rows = int(np.prod(a2.shape[:-1], dtype=np.int64))
        a_k = _layout.aligned_or_copy(a2.reshape(rows, K))
        shape = (rows, N)
        if not packed:
            b_k = _layout.aligned_or_copy(b2)
    else:
        shape = tuple(batch) + (M, N)
        a_k = _layout.aligned_or_copy(np.broadcast_to(a2, tuple(batch) + (M, K)))
        b_k = _layout.aligned_or_copy(np.broadcast_to(b2, tuple(batch) + (K, N)))
    r_k = None if residual is None else _layout.unit_rows_or_copy(residual.reshape(shape))

    def run(target):
        if packed and b.weights != "float32":
            st = b._storage
            _core.matmul_lowp(a_k, b.weights, st["weight"], st.get("scales"), K, N, target,
                              bias, activation, r_k)
        elif packed:
            _core.matmul_packed(a_k, b.data(), K, N, target, bias, activation, r_k)
        else:
            _core.matmul(a_k, b_k, target, bias, activation, r_k)

    return _layout.run_into(out, run, lambda o: _layout.kernel_target(o, shape))

"""The cost of the layers every model is made of, added to a PartCounter: a linear layer, a
norm, element-wise work, attention over keys, an embedding lookup, a convolution.

One ``Tally`` per forward. Its sizes: ``rows``, the tokens processed in all (batch x tokens);
``passes``, how many times each weight is read (1 for a forward, n for n decode steps, each
reading every weight once). It also keeps the parameter count (a tensor counted once, however
often it is read) and the largest single activation tensor (for the peak memory).

Element-wise FLOPs per element below are this package's convention (FlopCounterMode counts
none); they are a few percent of a transformer's FLOPs and their time is set by their bytes.
"""
from __future__ import annotations

import math

from .dtypes import ACTIVATION_BYTES as A
from .result import PartCounter

# FLOPs per element of the element-wise steps (each arithmetic op, exp / tanh / erf as one):
NORM_FLOPS = {"layer": 8,   # mean (1), x - mean (1), square (1), sum (1), * rstd (1), * g + b (2), + eps/rsqrt amortised (1)
              "rms": 4}     # square (1), sum (1), * rstd (1), * g (1)
SOFTMAX_FLOPS = 5           # max, subtract, exp, sum, scale by 1 / sum (per score)
ACTIVATION_FLOPS = {"gelu": 8,     # tanh form: x^3, * c, + x, * sqrt(2/pi), tanh, + 1, * x, * 0.5
                    "silu": 5,     # swiglu: -x, exp, + 1, divide, * up
                    "relu": 1, "tanh": 1}
ROPE_FLOPS = 3              # x1 cos - x2 sin: two products, one add (per rotated element)
ADD_FLOPS = 1               # an element-wise add that is not fused (position embeddings)


def activation_kind(name: str) -> str:
    """The ACTIVATION_FLOPS key of an activation name from a config ("gelu_new",
    "gelu_pytorch_tanh", "quick_gelu" -> "gelu"; "silu", "swish" -> "silu"; "relu")."""
    name = name.lower()
    if "gelu" in name:
        return "gelu"
    if name in ("silu", "swish"):
        return "silu"
    if "relu" in name:
        return "relu"
    return "tanh" if name == "tanh" else "gelu"


class Tally:
    """Parts, parameters and the largest activation of one forward (see the module docstring).
    ``wb``: bytes per weight element; ``kvb``: bytes per cached key/value element; ``lwb``:
    bytes per element of a Linear layer's matrix (its biases stay at ``wb``), default ``wb``:
    a load in a weight format (q8: 34/32) changes the matrices only, the rest stays float32.
    ``lformat``: the matrices' weight format, when one: a 16-bit or quantized matrix then
    counts its storage's exact bytes (weight_formats.storage_shapes: q8 / q4 pad K to 32)
    instead of ``lwb`` per element. ``weight_memory``: params at ``wb``, each Linear matrix
    counted in them at its own bytes."""

    def __init__(self, rows: int, passes: int, wb: float, kvb: float, lwb: float | None = None,
                 lformat: str | None = None):
        self.rows, self.passes, self.wb, self.kvb = rows, passes, wb, kvb
        self.lwb = wb if lwb is None else lwb
        self.lformat = None if lformat == "float32" else lformat
        # the Linear matrices' bytes beyond params * wb (0 when lwb == wb)
        self.linear_extra = 0.0
        self.parts = PartCounter()
        self.params = 0
        self.largest = 0.0

    def activation(self, elements: float) -> None:
        """Notes a float32 tensor of ``elements`` for the peak memory."""
        self.largest = max(self.largest, elements * A)

    def linear(self, part: str, fan_in: int, fan_out: int, *, bias: bool, rows=None,
               weight: bool = True, calls: int = 1) -> None:
        """y = x W^T + b on ``rows`` rows (default: all): 2 rows fan_in fan_out FLOPs (the bias
        add is not counted, as FlopCounterMode's addmm); the weight read once per pass;
        x read, y written. ``weight=False``: the matrix is another part's (tied) and is not
        counted again in the parameters. ``calls``: kernel calls per pass (0 for a matrix
        computed in another's call: q, k, v in one matmul over their concatenated weights); each
        call streams its weight (``streams``)."""
        rows = self.rows if rows is None else rows
        elements = fan_in * fan_out + (fan_out if bias else 0)
        matrix = self.matrix_bytes(fan_in, fan_out)
        if weight:
            self.params += elements
            self.linear_extra += matrix - fan_in * fan_out * self.wb
        read = matrix + (fan_out if bias else 0) * self.wb
        self.parts.add(part, flops=2.0 * rows * fan_in * fan_out,
                       weight_bytes=self.passes * read,
                       activation_bytes=rows * (fan_in + fan_out) * A, matmul=True,
                       calls=calls * self.passes, streams=calls * self.passes)
        self.activation(rows / self.passes * fan_out)

    def norm(self, part: str, kind: str, width: int, *, rows=None) -> None:
        """A LayerNorm (gain and bias) or RMSNorm (gain) over ``width`` features."""
        rows = self.rows if rows is None else rows
        elements = width * (2 if kind == "layer" else 1)
        self.params += elements
        self.parts.add(part, flops=NORM_FLOPS[kind] * rows * width,
                       weight_bytes=self.passes * elements * self.wb,
                       activation_bytes=2 * rows * width * A, calls=self.passes)

    def elementwise(self, part: str, elements: float, flops_each: float, *,
                    read: float = 1, written: float = 1, calls: int = 1) -> None:
        """Element-wise work on ``elements`` values, reading ``read`` and writing ``written``
        float32 tensors of that size (0, 0 and ``calls=0`` when fused into another kernel)."""
        self.parts.add(part, flops=flops_each * elements,
                       activation_bytes=(read + written) * elements * A,
                       calls=calls * self.passes)

    def embedding(self, part: str, table_rows: int, width: int, *, rows=None) -> None:
        """A lookup of ``rows`` rows of a (table_rows, width) table: the rows gathered are
        the weight bytes read, the table counts in the parameters."""
        rows = self.rows if rows is None else rows
        self.params += table_rows * width
        self.parts.add(part, weight_bytes=rows * width * self.wb,
                       activation_bytes=rows * width * A, calls=self.passes)
        self.activation(rows / self.passes * width)

    def conv(self, part: str, batch: int, cin: int, cout: int, kernel: tuple, hw_in: tuple,
             hw_out: tuple, *, groups: int = 1, params: int | None = None) -> None:
        """A 2-D convolution with a bias: 2 Cout (Cin / groups) kh kw Ho Wo FLOPs per image
        (the bias add not counted, as FlopCounterMode); the weight and bias read once per
        pass, the input read and the output written. ``params``: the checkpoint's elements
        for it when they differ from weight + bias (ResNet: no bias, BatchNorm's four tensors
        per channel, folded into weight and bias before running)."""
        kh, kw = kernel
        (h, w), (ho, wo) = hw_in, hw_out
        elements = cout * (cin // groups) * kh * kw + cout
        self.params += elements if params is None else params
        self.parts.add(part, flops=2.0 * batch * cout * (cin // groups) * kh * kw * ho * wo,
                       weight_bytes=self.passes * elements * self.wb,
                       activation_bytes=batch * (cin * h * w + cout * ho * wo) * A, matmul=True,
                       calls=self.passes, streams=self.passes)
        self.activation(batch * cout * ho * wo)

    def matrix_bytes(self, fan_in: int, fan_out: int) -> float:
        """Bytes of a Linear layer's (fan_in, fan_out) matrix (see the class docstring)."""
        if self.lformat is None:
            return fan_in * fan_out * self.lwb
        from ..weight_formats import storage_shapes
        return float(sum(dtype.itemsize * math.prod(shape)
                         for dtype, shape in storage_shapes(self.lformat, fan_in,
                                                            fan_out).values()))

    @property
    def weight_memory(self) -> float:
        return self.params * self.wb + self.linear_extra

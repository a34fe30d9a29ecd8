"""A float32 view at a byte offset that is not a multiple of 4 (a hand-made byte view) is a
valid input: every op hands the kernels an aligned copy (fastattn._layout). The kernels'
scalar float loads at such an address are undefined behaviour (UBSan: "load of misaligned
address", cpp/core/vec.h's load_partial); x86 tolerates them, other CPUs need not. The private
fastattn._core does not copy: scripts/sanitize.sh leaves the fuzz tests' misaligned draws out
(FASTATTN_FUZZ_MISALIGNED=0), since those also reach _core directly."""
import numpy as np
import pytest

import fastattn
from fastattn import _core

# _core.matmul_2d is left out: it is the one entry point that checks alignment itself and
# declines a misaligned operand (returns None; test_matmul_2d_declines_misaligned below), so
# fastattn.matmul hands it the caller's arrays unchecked.
KERNELS = ["activation", "swiglu", "softmax", "layer_norm", "rms_norm", "rope", "attention",
           "matmul", "kv_append", "kv_attend"]


def misaligned(shape):
    """A C-contiguous float32 array one byte off float alignment."""
    n = int(np.prod(shape))
    x = np.zeros(4 * n + 1, np.uint8)[1:].view(np.float32).reshape(shape)
    x[...] = np.linspace(-1, 1, n, dtype=np.float32).reshape(shape)
    return x


def matmul(x):
    fastattn.matmul(x, misaligned((8, 3)))


def kv_cache(x):
    cache = fastattn.KVCache(1, 1, 1, 8, 8)
    cache.append(0, x, x)
    cache.attend(0, x)


OPS = {
    "gelu": lambda x: fastattn.gelu(x), "swiglu": lambda x: fastattn.swiglu(x, x),
    "softmax": lambda x: fastattn.softmax(x), "layer_norm": lambda x: fastattn.layer_norm(x),
    "rms_norm": lambda x: fastattn.rms_norm(x), "rope": lambda x: fastattn.rope(x, np.arange(4)),
    "attention": lambda x: fastattn.attention(x, x, x), "matmul": lambda x: matmul(x[0, 0]),
    "KVCache": kv_cache,
}


@pytest.mark.parametrize("op", list(OPS))
def test_kernels_get_aligned_arrays(op, monkeypatch):
    seen = []
    for name in KERNELS:
        real = getattr(_core, name)

        def spy(*args, _real=real):
            seen.extend(a.flags.aligned for a in args if isinstance(a, np.ndarray))
            return _real(*args)
        monkeypatch.setattr(_core, name, spy)
    OPS[op](misaligned((1, 1, 4, 8)))
    assert seen and all(seen)


def test_matmul_2d_declines_misaligned():
    b = np.ones((8, 3), np.float32)
    assert _core.matmul_2d(misaligned((4, 8)), b, False, False, None, None, None, None) is None
    a = np.ones((4, 8), np.float32)
    assert _core.matmul_2d(a, misaligned((8, 3)), False, False, None, None, None, None) is None
    for i, x in ((4, misaligned((3,))), (6, misaligned((4, 3))), (7, misaligned((4, 3)))):
        args = [a, b, False, False, None, None, None, None]
        args[i] = x                             # bias, residual, out
        assert _core.matmul_2d(*args) is None

"""Arrays that went through pickle (a float32 dtype equal to, but not the same object as,
NumPy's float32) are float32 arrays like any other: every op must take them. The fuzz tests
draw every other kind of layout and dtype; this one kind is apart while it fails."""
import pickle

import numpy as np
import pytest

import fastattn

x = np.linspace(-2, 2, 24, dtype=np.float32).reshape(1, 2, 3, 4)
OPS = {
    "softmax": lambda a: fastattn.softmax(a),
    "log_softmax": lambda a: fastattn.log_softmax(a),
    "layer_norm": lambda a: fastattn.layer_norm(a),
    "rms_norm": lambda a: fastattn.rms_norm(a),
    "gelu": lambda a: fastattn.gelu(a),
    "swiglu": lambda a: fastattn.swiglu(a, a),
    "matmul": lambda a: fastattn.matmul(a[0, 0], a[0, 0].T),
    "attention": lambda a: fastattn.attention(a, a, a),
    "rope": lambda a: fastattn.rope(a, np.arange(3)),
}


@pytest.mark.parametrize("op", OPS)
def test_pickled_arrays_case_3(isa, op):
    unpickled = pickle.loads(pickle.dumps(x))
    assert unpickled.dtype == np.float32 and unpickled.dtype is not np.dtype(np.float32)
    np.testing.assert_array_equal(OPS[op](unpickled), OPS[op](x))

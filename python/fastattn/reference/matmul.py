"""matmul with its epilogue, unfused: act(a @ b + bias) + residual, step by step."""
import numpy as np

from .activation import activate


def matmul(a, b, transpose_a=False, transpose_b=False, bias=None, activation=None,
           residual=None):
    """act(op(a) @ op(b) + bias) + residual, op = transpose of the last two axes when asked;
    batch dimensions broadcast as in np.matmul."""
    if transpose_a and np.ndim(a) >= 2:
        a = np.swapaxes(a, -1, -2)
    if transpose_b and np.ndim(b) >= 2:
        b = np.swapaxes(b, -1, -2)
    y = np.matmul(a, b)
    if bias is not None:
        y = y + bias
    if activation is not None:
        y = activate(y, activation)
    if residual is not None:
        y = y + residual
    return y

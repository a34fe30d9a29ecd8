"""Argument validators (fastattn._validate): each check's accepted values and its message,
"op: name must be ..., got ...". test_boundary.py checks them through the public ops."""
import numpy as np
import pytest

from fastattn import _validate as v


def test_integer():
    n = v.integer("op", "n", np.int64(3))
    assert n == 3 and type(n) is int
    with pytest.raises(TypeError, match=r"^op: n must be an int, got bool$"):
        v.integer("op", "n", True)
    with pytest.raises(TypeError, match=r"^op: n must be an int, got float$"):
        v.integer("op", "n", 2.0)
    with pytest.raises(ValueError, match=r"^op: n must be >= 1, got 0$"):
        v.integer("op", "n", 0, 1)
    with pytest.raises(ValueError, match=r"^op: n must be <= 4, got 5$"):
        v.integer("op", "n", 5, maximum=4)
    with pytest.raises(ValueError, match=r"^op: n must be an int in \[1, 4\], got 5$"):
        v.integer("op", "n", 5, 1, 4)


def test_optional_integer_and_flag():
    assert v.integer("op", "n", None, 0, optional=True) is None
    assert v.flag("op", "b", None, optional=True) is None
    with pytest.raises(TypeError, match=r"^op: n must be None or an int, got str$"):
        v.integer("op", "n", "3", optional=True)
    with pytest.raises(TypeError, match=r"^op: n must be an int, got NoneType$"):
        v.integer("op", "n", None)
    with pytest.raises(TypeError, match=r"^op: b must be None or a bool, got int$"):
        v.flag("op", "b", 1, optional=True)


def test_flag():
    assert v.flag("op", "b", np.bool_(True)) is True
    with pytest.raises(TypeError, match=r"^op: b must be a bool, got int$"):
        v.flag("op", "b", 1)


def test_is_integer():
    assert v.is_integer(3) and v.is_integer(np.int32(3))
    assert not any(v.is_integer(x) for x in (True, np.bool_(False), 3.0, "3", None))


def test_one_of():
    assert v.one_of("op", "s", "b", ("a", "b")) == "b"
    with pytest.raises(ValueError, match=r"^op: s must be 'a' or 'b', got 'c'$"):
        v.one_of("op", "s", "c", ("a", "b"))
    with pytest.raises(ValueError, match=r"^op: s must be None, 'a' or 'b', got 'c'$"):
        v.one_of("op", "s", "c", (None, "a", "b"))
    with pytest.raises(ValueError, match=r"^op: s must be 'a', got 'c'$"):
        v.one_of("op", "s", "c", ("a",))


def test_require_shape_and_shape_str():
    assert v.shape_str(np.zeros((2, 3)).shape) == "(2, 3)" and v.shape_str([4]) == "(4,)"
    assert v.shapes_str(a=(2, 3), b=(4,)) == "a has shape (2, 3) and b has shape (4,)"
    assert v.shapes_str(a=(), b=(1,), c=(2,)) == ("a has shape (), b has shape (1,) and "
                                                  "c has shape (2,)")
    x = np.zeros((2, 3), np.float32)
    v.require_shape("op", "x", x, (2, 3))
    with pytest.raises(ValueError, match=r"^op: x has shape \(2, 3\), expected \(3,\) why$"):
        v.require_shape("op", "x", x, (3,), "why")


def test_normalize_axis():
    assert v.normalize_axis("op", -1, 3) == 2
    with pytest.raises(TypeError, match=r"^op: axis must be an int, got float$"):
        v.normalize_axis("op", 1.0, 3)
    with pytest.raises(ValueError, match=r"^op: axis 3 is out of range for a 3-D array$"):
        v.normalize_axis("op", 3, 3)
    with pytest.raises(ValueError, match=r"^op: x must have at least 1 dimension"):
        v.normalize_axis("op", -1, 0)


def test_str_items():
    assert v.str_items("op", "tokens", (t for t in "ab")) == ["a", "b"]
    with pytest.raises(TypeError, match=r"^op: tokens must be str, found int \(item 1\)$"):
        v.str_items("op", "tokens", ["a", 1])

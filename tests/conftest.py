"""Shared fixtures: every kernel test runs on every ISA path this machine has (`isa`), and
helpers check that results are bit-identical for any thread count."""
import numpy as np
import pytest

import fastattn

ISAS = fastattn.available_isas()


@pytest.fixture(params=ISAS)
def isa(request):
    """Runs the test with the kernels forced onto one ISA path, then restores the default."""
    with fastattn.use_isa(request.param):
        yield request.param


@pytest.fixture
def rng(request):
    """A generator seeded from the test's name: reproducible, different per test."""
    seed = sum(request.node.nodeid.encode()) * 2654435761 % (2**32)
    return np.random.default_rng(seed)


def assert_thread_invariant(fn, thread_counts=(1, 2, 3)):
    """fn() must give bit-identical results for every thread count."""
    results = []
    for n in thread_counts:
        with fastattn.threads(n):
            results.append(fn())
    for n, r in zip(thread_counts[1:], results[1:]):
        assert np.array_equal(results[0], r, equal_nan=True), f"threads=1 and threads={n} differ"
    return results[0]


def max_rel_error(actual, expected, floor=0.0):
    """max |actual - expected| / max(|expected|, floor) over all elements."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    denom = np.maximum(np.abs(expected), floor)
    with np.errstate(invalid="ignore", divide="ignore"):
        err = np.where(actual == expected, 0.0, np.abs(actual - expected) / denom)
    return float(np.max(err)) if err.size else 0.0

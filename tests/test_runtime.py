"""Dispatch, threads and cpu_info()."""
import os
import subprocess
import sys

import numpy as np
import pytest

import fastattn


def test_cpu_info_fields():
    info = fastattn.cpu_info()
    for key in ("isa", "available_isas", "cpu_model", "features", "threads", "openmp",
                "compiler", "build_flags"):
        assert key in info
    assert info["isa"] in info["available_isas"]
    assert info["available_isas"][0] == "baseline"
    assert "-march=native" not in info["build_flags"] and "fast-math" not in info["build_flags"]


def test_set_isa_roundtrip_and_errors():
    before = fastattn.get_isa()
    for isa in fastattn.available_isas():
        with fastattn.use_isa(isa):
            assert fastattn.get_isa() == isa
    assert fastattn.get_isa() == before
    with pytest.raises(ValueError, match=r"unknown ISA path 'sse9'"):
        fastattn.set_isa("sse9")
    missing = [i for i in ("avx2", "avx512") if i not in fastattn.available_isas()]
    for isa in missing:
        with pytest.raises(ValueError, match=rf"'{isa}' is not supported by this CPU"):
            fastattn.set_isa(isa)


def run_python(code, **env):
    full_env = dict(os.environ, **env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=full_env, timeout=120)


@pytest.mark.parametrize("isa", fastattn.available_isas())
def test_environment_forces_isa(isa):
    r = run_python("import fastattn; print(fastattn.get_isa())", FASTATTN_ISA=isa)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == isa


def test_environment_with_unsupported_isa_is_a_clear_error():
    missing = [i for i in ("avx2", "avx512") if i not in fastattn.available_isas()]
    r = run_python("import fastattn", FASTATTN_ISA=missing[0] if missing else "nonsense")
    assert r.returncode != 0
    assert "FASTATTN_ISA" in r.stderr


def test_threads_default_from_omp_num_threads():
    r = run_python("import fastattn; print(fastattn.get_num_threads())", OMP_NUM_THREADS="3")
    expected = "3" if fastattn.cpu_info()["openmp"] else "1"
    assert r.stdout.strip() == expected, r.stderr


def test_set_num_threads():
    before = fastattn.get_num_threads()
    with fastattn.threads(1):
        assert fastattn.get_num_threads() == 1
    assert fastattn.get_num_threads() == before
    with pytest.raises(ValueError, match=r"set_num_threads: n must be >= 1, got 0"):
        fastattn.set_num_threads(0)
    with pytest.raises(TypeError, match=r"set_num_threads: n must be an int, got float"):
        fastattn.set_num_threads(2.0)


def test_kernels_release_the_gil():
    # Two Python threads running a long kernel overlap only if the GIL is released.
    import threading
    import time
    x = np.random.default_rng(0).standard_normal((2048, 4096)).astype(np.float32)
    out = [np.empty_like(x), np.empty_like(x)]
    progress = []

    def spin():
        t_end = time.perf_counter() + 0.3
        while time.perf_counter() < t_end:
            progress.append(1)
            time.sleep(0.001)

    with fastattn.threads(1):
        t = threading.Thread(target=spin)
        t.start()
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < 0.3:
            fastattn.gelu(x, out=out[0])
        t.join()
    # With the GIL held through each gelu call (~10+ ms), spin() would get only a few turns.
    assert len(progress) > 50

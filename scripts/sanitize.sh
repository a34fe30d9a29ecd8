#!/usr/bin/env bash
# AddressSanitizer + UndefinedBehaviorSanitizer run: builds fastattn with
# -DFASTATTN_SANITIZE=ON into its own virtual environment and build folder (the normal build and
# any installed fastattn are left alone), then runs the tests that cross the NumPy / C++
# boundary, the fuzz tests and the loaders under the sanitizers. Any out-of-bounds access,
# use-after-free or undefined behaviour aborts the test run with a report.
#
#   scripts/sanitize.sh                 # build (incremental in build/sanitize) and test
#   scripts/sanitize.sh -k attention    # extra arguments go to pytest
#
# Environment: FASTATTN_SANITIZE_VENV (default $TMPDIR/fastattn-sanitize-venv),
# FASTATTN_FUZZ_EXAMPLES (examples per fuzz test and ISA path, default 30).
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${FASTATTN_SANITIZE_VENV:-${TMPDIR:-/tmp}/fastattn-sanitize-venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
# shellcheck disable=SC1091
. "$venv/bin/activate"
python -m pip install --quiet --upgrade pip
python -m pip install --quiet scikit-build-core pybind11 numpy

echo "== build with -fsanitize=address,undefined (build/sanitize)"
start=$(date +%s)
python -m pip install --quiet --no-build-isolation -Cbuild-dir=build/sanitize \
  -Ccmake.define.FASTATTN_SANITIZE=ON -Ccmake.build-type=RelWithDebInfo ".[test]"
echo "   built in $(( $(date +%s) - start )) s"

# The ASan runtime must be loaded before Python's libraries (the extension is loaded late), and
# libstdc++ with it: otherwise ASan's __cxa_throw interceptor finds no real function and the
# first C++ exception (every TypeError / ValueError of a binding) aborts. CPython frees little
# at exit by design, so leak detection is off. UBSan stops at the first report with a stack
# trace. The tests import the installed (sanitized) package: the checkout keeps its sources in
# python/, so nothing shadows it.
export LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libstdc++.so)"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:strict_string_checks=1:check_initialization_order=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
# Misaligned float32 views still reach the kernels (tests/test_fuzz_alignment.py, strict xfail):
# UBSan stops at the first such load, so the fuzz tests leave them out here until that is fixed.
export FASTATTN_FUZZ_MISALIGNED=0
# NumPy allocates array buffers with malloc: ASan puts redzones around every array, so a
# kernel reading or writing one float past its view is caught.
echo "== tests under the sanitizers"
start=$(date +%s)
# (test_memory_does_not_grow_with_lq_times_lk measures peak RSS, which ASan's shadow memory
# and quarantine inflate; test_kernels_get_aligned_arrays hands the kernels misaligned views
# on purpose, and so does test_strided_and_negative_stride_views through matmul's 2-D fast
# path, the same finding; test_resident_memory_is_the_formats_bytes measures RSS too)
# --capture=sys: a sanitizer report is written to file descriptor 2 by C code just before the
# process aborts; with pytest's default fd capture it would be lost with the process.
python -m pytest -q -p no:cacheprovider --capture=sys \
  tests/test_boundary.py tests/test_fuzz_*.py tests/test_safetensors.py \
  tests/test_checkpoint.py tests/test_loading.py tests/test_kv_cache.py tests/test_attention.py \
  tests/test_attention_rel_pos.py \
  tests/test_matmul.py tests/test_softmax.py tests/test_norm.py tests/test_activation.py \
  tests/test_rope.py tests/test_resample.py tests/test_resample_interpolate.py tests/test_conv.py \
  tests/test_layout.py tests/test_validate.py \
  tests/test_weight_formats.py tests/test_kv_cache_dtype.py tests/test_quantize.py \
  --deselect tests/test_attention.py::test_memory_does_not_grow_with_lq_times_lk \
  --deselect tests/test_fuzz_alignment.py::test_kernels_get_aligned_arrays \
  --deselect tests/test_matmul.py::test_strided_and_negative_stride_views \
  --deselect tests/test_quantize.py::test_resident_memory_is_the_formats_bytes \
  "$@"
echo "   tests ran in $(( $(date +%s) - start )) s"

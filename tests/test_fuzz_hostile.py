"""Runs tests/hostile_cases.py (the private extension's entry points with bent arguments, the
public ops with integer extremes) in a child process: a crash there is this test failing with
the input that crashed, not the end of the test run.

Why one child for the whole module rather than one per example: starting Python, NumPy and
fastattn costs ~0.3 s, which per example would make a few hundred examples take minutes;
hypothesis keeps generating and shrinking inside the child as usual (a Python-level failure
comes back shrunk, in pytest's output), and only a crash needs the log of the call in
progress, which ``hostile_cases.note`` writes before every call."""
import os
import subprocess
import sys
from pathlib import Path

HOSTILE = Path(__file__).with_name("hostile_cases.py")


def test_hostile_cases_in_a_child_process(tmp_path):
    log = tmp_path / "last_call.txt"
    env = dict(os.environ, FASTATTN_FUZZ_LOG=str(log))
    # the sanitizer run (scripts/sanitize.sh) passes its LD_PRELOAD and *SAN_OPTIONS on in env
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        str(HOSTILE)], env=env, capture_output=True, text=True, timeout=1800)
    if r.returncode == 0:
        return
    output = (r.stdout + r.stderr)[-6000:]
    last = log.read_text() if log.exists() else "(none logged)"
    crashed = r.returncode < 0 or "Sanitizer" in output or "Fatal Python error" in output
    what = f"crashed (exit status {r.returncode})" if crashed else "failed"
    raise AssertionError(f"tests/hostile_cases.py {what}; last call: {last}\n{output}")

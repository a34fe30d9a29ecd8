"""Build guard: ISA-specific instructions appear only in their own ISA's namespace.

A function outside fastattn::isa_avx512 that touches a zmm register (or one outside the avx2 /
avx512 namespaces that touches ymm) would crash older CPUs: the classic way is an inline or
template function instantiated in an AVX-512 translation unit and merged by the linker into
code that runs everywhere."""
import re
import shutil
import subprocess

import pytest

from fastattn import _core

objdump = shutil.which("objdump")


@pytest.mark.skipif(objdump is None, reason="objdump (binutils) not installed")
def test_wide_registers_only_in_their_isa_namespace():
    out = subprocess.run([objdump, "-d", "--no-show-raw-insn", "-C", _core.__file__],
                         capture_output=True, text=True, check=True).stdout
    if "x86-64" not in subprocess.run([objdump, "-f", _core.__file__], capture_output=True,
                                      text=True).stdout:
        pytest.skip("not an x86-64 build")
    offenders = []
    func = None
    for line in out.splitlines():
        m = re.match(r"^[0-9a-f]+ <(.*)>:$", line)
        if m:
            func = m.group(1)
            continue
        if func is None:
            continue
        if "%zmm" in line and "isa_avx512" not in func:
            offenders.append((func, line.strip()))
        elif "%ymm" in line and not ("isa_avx2" in func or "isa_avx512" in func):
            offenders.append((func, line.strip()))
    assert not offenders, "wide registers outside their ISA namespace:\n" + "\n".join(
        f"{f}: {l}" for f, l in offenders[:20])

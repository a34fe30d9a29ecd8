"""fastattn.bench.report: docs/benchmarks.md from a `fastattn bench --json` file. A small
fabricated run checks the header line, the machine line, the versions and every column."""
import json

from fastattn.bench import report

MACHINE = {"cpu_model": "Test CPU", "isa": "avx2", "available_isas": ["baseline", "avx2"],
           "threads": 2, "openmp": True}

RUN = {
    "date": "2026-11-30 10:00 UTC", "quick": True, "repeats": 3,
    "fastattn": "0.1.0", "numpy": "2.1.0", "torch": "2.13.0+cpu",
    "machine": MACHINE, "copy_bandwidth_bytes_per_s": 20e9,
    "results": [
        # a row with every figure: 2 ms, NumPy 8 ms, torch 4 ms, 20 GB/s (100% of copy),
        # 50 GFLOP/s
        {"op": "softmax", "shape": "1024x4096",
         "seconds": {"fastattn": 0.002, "numpy": 0.008, "torch": 0.004},
         "bytes": 40_000_000, "flops": 1e8, "goal": "",
         "speedup_vs_numpy": 4.0, "speedup_vs_torch": 2.0,
         "gb_per_s": 20.0, "gflop_per_s": 50.0},
        # a row with fastattn alone: every other cell is "-"
        {"op": "kv_append 1 token", "shape": "after 1000",
         "seconds": {"fastattn": 7e-6}, "bytes": 0, "flops": 0.0, "goal": ""},
    ],
}


def _table(page: str) -> list[list[str]]:
    """The Markdown table's rows as cell lists: header first, the |---| rule left out."""
    rows = [line for line in page.splitlines()
            if line.startswith("| ") and not line.startswith("| ---")]
    return [[c.strip() for c in line.strip("|").split("|")] for line in rows]


def test_every_column_of_a_full_row():
    header, row = _table(report.render(RUN))[:2]
    assert header == ["op", "shape", "fastattn ms", "NumPy ms", "torch ms", "vs NumPy",
                      "vs torch", "GB/s", "% copy", "GFLOP/s"]
    assert dict(zip(header, row)) == {
        "op": "softmax", "shape": "1024x4096", "fastattn ms": "2.00", "NumPy ms": "8.00",
        "torch ms": "4.00", "vs NumPy": "4.00x", "vs torch": "2.00x", "GB/s": "20.0",
        "% copy": "100%", "GFLOP/s": "50"}


def test_missing_figures_are_dashes():
    rows = _table(report.render(RUN))
    assert rows[2] == ["kv_append 1 token", "after 1000", "0.007"] + ["-"] * 7
    assert len(rows) == 1 + len(RUN["results"])   # the header, then one row per result


def test_header_machine_and_versions():
    page = report.render(RUN, note="The full run comes later.")
    lines = page.splitlines()
    assert lines[0] == "# Benchmarks"
    header = lines[2]
    assert "2026-11-30 10:00 UTC" in header and "--quick" in header
    assert "3 repeats" in header and header.endswith("The full run comes later.")
    assert ("Machine: Test CPU | isa avx2 (available: baseline, avx2) | threads 2 | "
            "openmp True | copy bandwidth 20.0 GB/s") in page
    assert "torch 2.13.0+cpu" in page and "numpy 2.1.0" in page


def test_full_run_and_no_torch():
    run = dict(RUN, quick=False, torch=None)
    page = report.render(run)
    assert "full shapes" in page and "--quick" not in page.splitlines()[2]
    assert "torch not installed" in page


def test_main_reads_the_json(tmp_path, capsys):
    path = tmp_path / "run.json"
    path.write_text(json.dumps(RUN))
    assert report.main([str(path)]) == 0
    assert capsys.readouterr().out == report.render(RUN)

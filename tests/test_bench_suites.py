"""Every `fastattn bench` suite builds its --quick cases and each implementation runs once:
a case that fails to build or to call (a renamed helper, a wrong argument) fails here, not in
the middle of a benchmark run. Timing is bench/'s job, not the tests'."""
import pytest

from fastattn import bench


@pytest.mark.parametrize("suite", bench.SUITES)
def test_quick_cases_build_and_run(suite):
    if suite == "distributed":  # its cases need Ray Data (the test extra installs it)
        pytest.importorskip("ray")
    cases = list(bench.iter_cases([suite], quick=True))
    assert cases, f"suite {suite} has no quick case"
    for case in cases:
        assert "fastattn" in case.impls and case.op and case.shape
        for name, call in case.impls.items():
            call()

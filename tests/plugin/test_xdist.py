"""pytest-xdist: each worker runs the setup its tests need; the controller reports it."""

from __future__ import annotations

import pytest

from ._suite import Suite

pytest.importorskip("xdist")


def test_each_worker_runs_its_setup_and_the_controller_prints_each_summary(
    suite: Suite,
) -> None:
    suite.conftest(
        """
        import time
        from flowrun import task

        @task
        def db():
            time.sleep(0.3)  # long after 'broken' has failed
            return "db"

        @task
        def broken():
            raise RuntimeError("broken")
        """
    )
    suite.tests(
        """
        import pytest

        def test_db(db):
            pass

        @pytest.mark.skip(reason="later")
        def test_broken(broken):
            pass
        """
    )
    result = suite.run_subprocess("-n", "2", "--flowrun-report=report.json")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*= flowrun [[]gw?[]] =*", "flowrun: * tasks run, *"])
    # A task failed on a worker: the session fails, as without xdist.
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert {p.name for p in suite.path.glob("report.gw*.json")} <= {
        "report.gw0.json",
        "report.gw1.json",
    }
    assert list(suite.path.glob("report.gw*.json"))

"""Async tasks: one session loop in a background thread, next to pytest-asyncio in any mode."""

from __future__ import annotations

import pytest

from ._suite import Suite

ASYNC_TASKS = """
    import asyncio, threading
    import pytest
    import pytest_asyncio
    from flowrun import task

    @task
    async def broker():
        loop = id(asyncio.get_running_loop())
        yield loop
        log(f"broker down on the same loop: {id(asyncio.get_running_loop()) == loop}")

    @task
    @pytest.fixture(scope="session")
    async def service(broker):
        await asyncio.sleep(0)
        yield (threading.current_thread().name, id(asyncio.get_running_loop()) == broker)
        log("service down")

    @pytest_asyncio.fixture
    async def helper():
        return asyncio.get_running_loop()
"""


@pytest.mark.parametrize("mode", ["strict", "auto"])
def test_async_tasks_coexist_with_pytest_asyncio(suite: Suite, mode: str) -> None:
    suite.ini(f"asyncio_mode = {mode}")
    suite.conftest(ASYNC_TASKS)
    suite.tests(
        """
        import asyncio
        import pytest

        @pytest.mark.asyncio
        async def test_async_test(service, helper):
            assert helper is asyncio.get_running_loop()
            assert service == ("flowrun-setup-loop", True)

        def test_sync_test(service, broker):
            assert service[1]
        """
    )
    result = suite.run()
    result.assert_outcomes(passed=2)
    assert suite.log() == ["service down", "broker down on the same loop: True"]


def test_an_async_setup_step_in_auto_mode_is_not_taken_for_a_test(suite: Suite) -> None:
    suite.ini("asyncio_mode = auto")
    suite.conftest(
        """
        from flowrun import task

        @task
        async def test_data():
            return [1, 2, 3]
        """
    )
    suite.tests("async def test_sum(test_data):\n    assert sum(test_data) == 6\n")
    suite.run().assert_outcomes(passed=1)

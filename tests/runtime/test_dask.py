"""Sync tasks on a Dask cluster: ``build_default_engine(executor=client.get_executor())``.

One ``LocalCluster`` of two single-threaded worker processes on loopback serves the whole
module. Its executor is not a thread pool of this process, so flowrun treats it as running
calls elsewhere: what it sends pickles, a call's timeout runs from its submission, and
sync generator tasks are refused before the run.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flowrun import SchedulerConfig, TaskDefinitionError, TaskRegistry, build_default_engine, task
from flowrun.engine import Engine
from flowrun.scheduler import CANCEL_GRACE_S

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    """A client of a two-worker local cluster, shared by the module; closed by the test."""
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            # Without a dashboard the scheduler still serves HTTP, on 8787 unless told
            # otherwise: a free port, so that two clusters (xdist) never warn of a clash.
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def _engine(client: Any, registry: TaskRegistry, **config: Any) -> Engine:
    return build_default_engine(
        executor=client.get_executor(), registry=registry, config=SchedulerConfig(**config)
    )


def _report(engine: Engine, run_id: str) -> dict[str, Any]:
    return engine.get_run_report(run_id)


def _marks(folder: Path) -> int:
    """How many calls have started: each leaves a file in ``folder``."""
    return len(list(folder.iterdir()))


def _busy(dask_worker: Any) -> int:
    return int(dask_worker.state.executing_count)  # abandoned calls still running included


async def _until_idle(client: Any) -> None:
    """Wait for the calls earlier tests abandoned to end: every worker thread is free."""
    deadline = time.monotonic() + 10
    while any(client.run(_busy).values()):
        assert time.monotonic() < deadline, "the cluster's workers stay busy"
        await asyncio.sleep(0.05)


@pytest.mark.asyncio
async def test_sync_tasks_run_on_the_workers_and_their_results_come_back(
    client: Any, registry: TaskRegistry
) -> None:
    @task(registry=registry)
    def where() -> int:
        return os.getpid()

    @task(registry=registry, deps=[where])
    def double(where: int) -> int:
        return where * 2

    @task(registry=registry)
    async def here() -> int:
        return os.getpid()

    engine = _engine(client, registry)
    report = _report(engine, await engine.run_once("dask"))
    assert report["status"] == "SUCCESS", report
    workers = set(client.run(os.getpid).values())
    pid = report["tasks"]["where"]["result"]
    assert pid in workers
    assert os.getpid() not in workers
    assert report["tasks"]["double"]["result"] == pid * 2
    assert report["tasks"]["here"]["result"] == os.getpid()  # async tasks stay on the loop
    assert report["executor"] == "ClientExecutor"


@pytest.mark.asyncio
async def test_an_exception_raised_on_a_worker_is_in_the_report(
    client: Any, registry: TaskRegistry
) -> None:
    @task(registry=registry)
    def broken() -> None:
        raise ValueError(f"port in use in {os.getpid()}")

    @task(registry=registry, deps=[broken])
    def after() -> None: ...

    engine = _engine(client, registry)
    report = _report(engine, await engine.run_once("dask"))
    entry = report["tasks"]["broken"]
    assert report["status"] == "FAILED"
    assert entry["status"] == "FAILED"
    assert entry["error"]["type"] == "ValueError"
    assert entry["error"]["message"].startswith("port in use in ")
    assert "in broken" in entry["error"]["traceback"]
    assert report["tasks"]["after"]["skipped_because"] == "broken"


@pytest.mark.asyncio
async def test_a_retry_is_a_call_of_its_own_even_for_a_pure_executor(
    client: Any, registry: TaskRegistry, tmp_path: Path
) -> None:
    # Dask's executor is pure by default: equal calls share one result. Each attempt is
    # a call of its own all the same, so the retry runs instead of re-raising.
    @task(registry=registry, retries=2)
    def flaky(marks: Path = tmp_path) -> int:
        made = len(list(marks.iterdir()))
        (marks / str(made)).touch()
        if made == 0:
            raise ConnectionError("first attempt")
        return made

    engine = _engine(client, registry)
    report = _report(engine, await engine.run_once("dask"))
    assert report["tasks"]["flaky"]["status"] == "SUCCESS", report
    assert report["tasks"]["flaky"]["attempts"] == 2
    assert report["tasks"]["flaky"]["result"] == 1


@pytest.mark.asyncio
async def test_a_timeout_abandons_the_remote_call_without_waiting_for_it(
    client: Any, registry: TaskRegistry
) -> None:
    @task(registry=registry, timeout_s=0.3)
    def hangs() -> None:
        time.sleep(1.5)  # short: the worker stays busy with it after it is abandoned

    @task(registry=registry)
    def quick() -> str:
        return "done"

    engine = _engine(client, registry)
    started = time.perf_counter()
    report = _report(engine, await engine.run_once("dask"))
    elapsed = time.perf_counter() - started
    assert report["tasks"]["hangs"]["status"] == "TIMED_OUT"
    assert report["tasks"]["hangs"]["error"]["type"] == "TaskTimeoutError"
    assert report["tasks"]["quick"]["result"] == "done"
    assert elapsed < 1.2  # the 1.5 s call was not waited for


@pytest.mark.asyncio
async def test_cancelling_returns_within_the_grace_and_cancels_queued_calls(
    client: Any, registry: TaskRegistry, tmp_path: Path
) -> None:
    # Four calls on two single-threaded workers: two run, two wait in Dask's queue.
    for n in range(4):

        @task(name=f"sleeper{n}", registry=registry)
        def sleeper(marks: Path = tmp_path, n: int = n) -> None:
            (marks / str(n)).touch()
            time.sleep(0.8)

    await _until_idle(client)
    engine = _engine(client, registry, max_parallel=4)
    run = asyncio.ensure_future(engine.run_once("dask"))
    while _marks(tmp_path) < 2:  # noqa: ASYNC110 (the workers are other processes: poll)
        await asyncio.sleep(0.02)
    started = time.perf_counter()
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert time.perf_counter() - started < CANCEL_GRACE_S
    assert engine.last_run_id is not None
    report = _report(engine, engine.last_run_id)
    assert report["status"] == "CANCELLED"
    assert report["counts"]["CANCELLED"] == 4
    await asyncio.sleep(1.0)  # the running calls end; cancelled queued ones never start
    assert _marks(tmp_path) == 2


@pytest.mark.asyncio
async def test_a_sync_generator_task_is_refused_before_the_run(
    client: Any, registry: TaskRegistry
) -> None:
    ran: list[str] = []

    @task(registry=registry)
    def database() -> Iterator[str]:
        ran.append("setup")
        yield "postgres://"

    @task(registry=registry)
    async def token() -> str:
        ran.append("token")
        return "t"

    engine = _engine(client, registry)
    refused = r"'database' is a sync generator, which cannot run in ClientExecutor"
    with pytest.raises(TaskDefinitionError, match=refused):
        await engine.run_once("dask")
    assert ran == []
    assert engine.last_run_id is None


@pytest.mark.asyncio
async def test_the_callers_client_stays_open(client: Any, registry: TaskRegistry) -> None:
    @task(registry=registry)
    def one() -> int:
        return 1

    executor = client.get_executor()
    engine = build_default_engine(executor=executor, registry=registry)
    for _ in range(2):
        assert _report(engine, await engine.run_once("dask"))["status"] == "SUCCESS"
    assert client.status == "running"
    assert executor.submit(int, "7").result(timeout=10) == 7

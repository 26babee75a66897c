"""``--flowrun-xdist once``: the pytest-xdist controller runs the setup for every worker.

``OnceController`` is registered on the controller only. Before any worker starts it
validates the tasks the controller knows (its initial conftests and plugins: it never
collects), so a bad DAG is one usage error, and opens the wire of ``_wire`` on the setup
loop; each worker gets its address in ``workerinput``. A worker tells it which tasks its
tests need once it has collected (``need``), then asks for one result at a time
(``value``). The first ``value`` starts the run, so ``-k unit`` starts nothing; every
task runs at most once for the whole test run, and a replacement worker (xdist's
``--max-worker-restart``) gets the results already there.

The run belongs to the controller's ``SetupSession``: its fixture parameters are set up
on the controller, its teardown is a session finalizer that runs after xdist has shut
the workers down (``pytest_sessionfinish``), and the summary, report and exit status are
the session's, once. Only plain data crosses to the workers (``crosses_unchanged``); a
result that only other tasks use never leaves the controller.

pytest gives a plugin no request outside a test; the controller's one comes from an
item of its own, pushed on pytest's setup stack without a setup (so no autouse fixture
runs there): private pytest API, pinned by the tests of ``once`` mode.

Imports the plugin's ``_dynamic``, ``_launch``, ``_options``, ``_outcomes``,
``_selection``, ``_signals`` and ``_wire``; the runtime inside functions.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import pytest

from pytest_flowrun._dynamic import not_in_run
from pytest_flowrun._launch import plan_run
from pytest_flowrun._options import Settings
from pytest_flowrun._outcomes import not_served, start_failed_text
from pytest_flowrun._selection import Selection, validate
from pytest_flowrun._signals import import_what_the_run_needs
from pytest_flowrun._wire import WORKERINPUT_KEY, crosses_unchanged, decode, encode

if TYPE_CHECKING:
    from flowrun.dag import Dag
    from flowrun.scheduler import ActiveRun
    from pytest_flowrun._launch import RunPlan
    from pytest_flowrun._session import SetupSession


class OnceController:
    """The controller's side of ``once`` mode: validates, serves the workers, starts the run."""

    def __init__(self, state: SetupSession) -> None:
        self.state = state
        self._session: pytest.Session | None = None
        self._full: Dag | None = None
        #: Every task a worker said its tests need, in the order first asked.
        self._needed: dict[str, None] = {}
        self._token = secrets.token_hex(16)
        self._address: list[Any] = []
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._start: asyncio.Future[ActiveRun] | None = None
        self._closed = False
        #: Why the run could not start, if it could not: every test needing a task fails with it.
        self.start_error: str | None = None

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """Validate the tasks and open the wire, before xdist starts the workers."""
        self._session = session
        self._full = validate(self.state.discovery)
        import_what_the_run_needs()
        self.state.install_signals()
        portal = self.state.portal
        portal.start()
        self._address = portal.call(self._listen())

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """Give each worker the wire's address and token."""
        node.workerinput[WORKERINPUT_KEY] = self._address

    @pytest.hookimpl(wrapper=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> Generator[None, None, None]:
        """Close the wire and let a start in flight settle before the session's
        finalizers (the run's teardown among them) run; write the CI summary after."""
        self._closed = True
        if self.state.portal.running:
            self.state.portal.call(self._close())
        result = yield
        from pytest_flowrun._report import empty_report
        from pytest_flowrun._summary import write_summaries

        report = self.state.report
        write_summaries(self.state.settings, [("flowrun", report or empty_report())])
        return result

    async def _listen(self) -> list[Any]:
        self._server = server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        host, port = server.sockets[0].getsockname()[:2]
        return [host, port, self._token]

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        for handler in list(self._handlers):
            handler.cancel()
        if self._handlers:
            await asyncio.wait(list(self._handlers))
        if self._start is not None:
            await asyncio.wait([self._start])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            token = decode(await reader.readline()).get("token")
            if not isinstance(token, str) or not secrets.compare_digest(
                token.encode(), self._token.encode()
            ):
                return  # not one of our workers
            while line := await reader.readline():
                reply = await self._answer(decode(line))
                writer.write(encode(reply))
                await writer.drain()
        except (OSError, ValueError, asyncio.CancelledError):
            pass  # the worker left (crashed, killed, done) or the session ends
        finally:
            self._handlers.discard(task)
            writer.close()

    async def _answer(self, message: dict[str, Any]) -> dict[str, Any]:
        if message.get("op") == "need":
            return self._need(message.get("tasks"), message.get("origins"))
        if message.get("op") == "value":
            return await self._value(str(message.get("task")))
        return {"error": f"flowrun: unknown request {message.get('op')!r}"}

    def _need(self, tasks: object, origins: object) -> dict[str, Any]:
        names = [str(t) for t in tasks] if isinstance(tasks, list) else []
        where = origins if isinstance(origins, dict) else {}
        full = self._full
        unknown = [n for n in names if full is None or n not in full.index]
        if unknown:
            listed = ", ".join(f"{n!r} ({where.get(n, '?')})" for n in unknown)
            return {
                "error": f"flowrun: --flowrun-xdist once: task(s) {listed} are declared where "
                "the xdist controller, which runs the setup, does not look: it loads only the "
                "initial conftests (the rootdir's and testpaths') and plugins; declare the "
                "tasks there, or use --flowrun-xdist per-worker"
            }
        self._needed.update(dict.fromkeys(names))
        return {"ok": True}

    async def _value(self, name: str) -> dict[str, Any]:
        from flowrun.scheduler import TaskFailedError

        try:
            run = await self._ensure_run()
        except Exception:
            return {"failed": self.start_error or "flowrun: the setup run could not start"}
        if name not in run.dag.index:  # asked for dynamically: no test names it
            return {"failed": not_in_run(name)}
        try:
            value = await run.result(name)
        except TaskFailedError as exc:
            skipped, message = not_served(exc, run)
            return {"skipped": message} if skipped else {"failed": message, "task": exc.cause}
        if not crosses_unchanged(value):
            return {
                "failed": f"flowrun: task {name!r} returned a {type(value).__qualname__}, "
                "which cannot reach the tests on xdist workers unchanged: --flowrun-xdist "
                "once sends only JSON data (str, int, float, bool, None, lists, dicts with "
                "str keys); return a URL, a path or a str, or use --flowrun-xdist per-worker",
                "task": name,
            }
        return {"value": value}

    async def _ensure_run(self) -> ActiveRun:
        if self._start is None:
            if self._closed:
                raise RuntimeError("the session is ending")
            self._start = asyncio.ensure_future(self._start_run())
        return await asyncio.shield(self._start)

    async def _start_run(self) -> ActiveRun:
        # The fixtures the tasks take are pytest's to set up, which blocks: on a thread,
        # while the main thread waits on xdist's events and sets up nothing.
        session = self._session
        assert session is not None
        try:
            plan = await asyncio.get_running_loop().run_in_executor(None, self._plan, session)
        except BaseException as exc:
            self.start_error = start_failed_text(exc)
            raise
        if self._closed:  # Ctrl-C while the fixtures were set up: start nothing now
            self.start_error = "flowrun: the session ended before the setup run started"
            raise RuntimeError(self.start_error)
        run = plan.start()
        self.state.adopt(run, plan.store, session)
        return run

    def _plan(self, session: pytest.Session) -> RunPlan:
        full = self._full
        assert full is not None
        keep = full.ancestors(list(self._needed))
        selection = Selection(
            full,
            tuple(n for n in full.names if n in keep),
            tuple(n for n in full.names if n not in keep),
        )
        self.state.selection = selection
        request = _controller_request(session)
        entries = self.state.discovery.entries

        def fixture_value(name: str) -> Any:
            try:
                return request.getfixturevalue(name)
            except pytest.FixtureLookupError:
                users = [n for n in selection.selected if name in entries[n].fixture_args]
                raise pytest.UsageError(
                    f"task {users[0] if users else '?'!r} takes fixture {name!r}, which the "
                    "xdist controller that runs the setup (--flowrun-xdist once) does not "
                    "have: it loads only the initial conftests (the rootdir's and "
                    "testpaths') and plugins; define the fixture there, or use "
                    "--flowrun-xdist per-worker"
                ) from None

        return plan_run(self.state.config, self.state.settings, selection, entries, fixture_value)


def _controller() -> None:
    """The function of the controller's own item (never called)."""


def _controller_request(session: pytest.Session) -> pytest.FixtureRequest:
    """A request for session fixtures on the controller, which has no test to ask from.

    The item and the session go on pytest's setup stack as a test's would, but without
    their setup (no autouse fixture runs): the fixtures set up through the request are
    torn down with the session, in reverse order, after the run's teardown.
    """
    item = pytest.Function.from_parent(session, name="flowrun-controller", callobj=_controller)
    stack = session._setupstate.stack  # private: pytest's SetupState
    stack.setdefault(session, ([session.teardown], None))
    stack.setdefault(item, ([], None))
    return item._request  # private: the item's TopRequest


def refuse_unsupported(config: pytest.Config, settings: Settings) -> None:
    """``pytest.UsageError`` for what ``once`` mode cannot serve: workers on other
    machines, promoted fixtures, pytest-asyncio's session loop."""
    problems = []
    for raw in config.getoption("tx", None) or ():
        spec = str(raw).split("*", 1)[-1]  # "3*popen" is three popen workers
        if not spec.startswith("popen"):
            problems.append(
                f"--tx {raw!r} is not a local worker: the controller hands results to its "
                "workers over a loopback connection, and a task's server runs on the "
                "controller's machine, out of a remote worker's reach"
            )
    if settings.fixtures:
        problems.append(
            "promoted fixtures (flowrun_fixtures / --flowrun-fixture) are not supported in "
            "this mode yet: the controller does not collect, so it cannot promote them"
        )
    if settings.loop != "thread":
        problems.append(
            f"--flowrun-loop {settings.loop} needs the tests' own event loop, which lives "
            "on the workers, not on the controller that runs the setup"
        )
    if problems:
        raise pytest.UsageError(
            "flowrun: --flowrun-xdist once cannot run here: "
            + "; ".join(problems)
            + "; use --flowrun-xdist per-worker (the default)"
        )

"""The plugin's options: each command-line option has an ini twin; the command line wins.

Imported by ``plugin`` in every pytest run, so it imports only pytest and the standard
library (no asyncio, no runtime, nothing else of the plugin).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

#: ``SchedulerConfig().max_parallel``, repeated so that reading options imports no asyncio
#: (a test pins the two together).
DEFAULT_MAX_PARALLEL = 16

#: ``--flowrun-loop``: where async tasks run; the first is the default.
LOOP_MODES = ("thread", "asyncio-session")
#: ``--flowrun-xdist``: who runs the setup under pytest-xdist; the first is the default.
XDIST_MODES = ("per-worker", "once")
#: Set by the xdist controller in ``once`` mode to its pid (see ``serves_once``).
ONCE_ENV = "FLOWRUN_XDIST_ONCE_CONTROLLER"

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


class Settings:
    """The plugin's options, validated; read once per session, never changed.

    ``explicit`` lists the options the user set (for the report header); ``resources`` are
    the caps of ``--flowrun-resources`` as ``(name, cap)`` pairs in the order given;
    ``summary_path`` is where ``--flowrun-summary`` appends the Markdown summary, and
    ``github_summary`` (``flowrun_github_summary``) says whether it also goes to
    ``$GITHUB_STEP_SUMMARY`` when that is set; ``report_results``
    (``flowrun_report_results``) keeps the task results in the JSON report; ``fixtures``
    (``--flowrun-fixture``, ``flowrun_fixtures``) are the session fixtures, names or
    fnmatch patterns, that join the setup DAG as tasks (``_promote``); ``loop`` is
    ``--flowrun-loop``, ``thread`` (flowrun's own loop) or ``asyncio-session``
    (pytest-asyncio's session loop, ``_borrowed_loop``); ``xdist`` is ``--flowrun-xdist``,
    ``per-worker`` (each worker runs its own setup) or ``once`` (the controller runs it
    for every worker, ``_once``).
    """

    # Not a dataclass: making one costs about a millisecond at every pytest start.
    __slots__ = (
        "explicit",
        "fixtures",
        "github_summary",
        "loop",
        "max_parallel",
        "report_path",
        "report_results",
        "resources",
        "show_dag",
        "summary_path",
        "timeout_s",
        "xdist",
    )

    def __init__(
        self,
        max_parallel: int = DEFAULT_MAX_PARALLEL,
        timeout_s: float | None = None,
        show_dag: bool = False,
        report_path: Path | None = None,
        explicit: tuple[str, ...] = (),
        resources: tuple[tuple[str, int], ...] = (),
        *,
        summary_path: Path | None = None,
        github_summary: bool = True,
        report_results: bool = False,
        fixtures: tuple[str, ...] = (),
        loop: str = LOOP_MODES[0],
        xdist: str = XDIST_MODES[0],
    ) -> None:
        self.max_parallel = max_parallel
        self.timeout_s = timeout_s
        self.show_dag = show_dag
        self.report_path = report_path
        self.explicit = explicit
        self.resources = resources
        self.summary_path = summary_path
        self.github_summary = github_summary
        self.report_results = report_results
        self.fixtures = fixtures
        self.loop = loop
        self.xdist = xdist


def add_options(parser: pytest.Parser) -> None:
    """Register the command-line options and their ini twins."""
    group = parser.getgroup("flowrun", "flowrun: concurrent session setup")
    group.addoption(
        "--flowrun-max-parallel",
        dest="flowrun_max_parallel",
        metavar="N",
        default=None,
        help="Run at most N setup tasks at once (default "
        f"{DEFAULT_MAX_PARALLEL}). Ini: flowrun_max_parallel.",
    )
    group.addoption(
        "--flowrun-timeout",
        dest="flowrun_timeout",
        metavar="SECONDS",
        default=None,
        help="Default timeout of each setup task declared without timeout_s; "
        "0 or 'none' for no timeout (the default). Ini: flowrun_timeout.",
    )
    group.addoption(
        "--flowrun-dag",
        dest="flowrun_dag",
        action="store_true",
        default=None,
        help="Print the setup DAG of the selected tests before running them, and a "
        "per-task table with the critical path in the summary. Ini: flowrun_dag.",
    )
    group.addoption(
        "--flowrun-report",
        dest="flowrun_report",
        metavar="PATH",
        default=None,
        help="Write the setup run's report as JSON to PATH. Ini: flowrun_report.",
    )
    group.addoption(
        "--flowrun-summary",
        dest="flowrun_summary",
        metavar="PATH",
        default=None,
        help="Append a Markdown summary of the setup run, with Mermaid charts, to PATH. "
        "Ini: flowrun_summary.",
    )
    parser.addini(
        "flowrun_summary",
        "flowrun: path of the Markdown summary of the setup run",
        type="string",
        default="",
    )
    parser.addini(
        "flowrun_github_summary",
        "flowrun: append the summary to $GITHUB_STEP_SUMMARY when it is set (true/false)",
        type="bool",
        default=True,
    )
    parser.addini(
        "flowrun_report_results",
        "flowrun: keep the task results in the JSON report (true/false; default false)",
        type="bool",
        default=False,
    )
    group.addoption(
        "--flowrun-resources",
        dest="flowrun_resources",
        metavar="NAME=N ...",
        default=None,
        help="Cap what setup tasks declare with @task(resources=...): at most N of NAME "
        "held at once, e.g. 'docker=2 db=1'. Ini: flowrun_resources.",
    )
    parser.addini(
        "flowrun_resources",
        "flowrun: caps of the resources setup tasks declare, e.g. docker=2 db=1",
        type="string",
        default="",
    )
    group.addoption(
        "--flowrun-fixture",
        dest="flowrun_fixture",
        metavar="NAME",
        action="append",
        default=None,
        help="Run session fixture NAME (or an fnmatch pattern; '*' for every session "
        "fixture) as a setup task, without changing its code; repeatable. "
        "Ini: flowrun_fixtures.",
    )
    parser.addini(
        "flowrun_fixtures",
        "flowrun: session fixtures (names or fnmatch patterns) run as setup tasks",
        type="string",
        default="",
    )
    group.addoption(
        "--flowrun-loop",
        dest="flowrun_loop",
        metavar="MODE",
        default=None,
        help="Where async setup tasks run: 'thread' (flowrun's own loop, the default) or "
        "'asyncio-session' (pytest-asyncio's session loop, so tasks can hand "
        "session-loop tests live clients). Ini: flowrun_loop.",
    )
    parser.addini(
        "flowrun_loop",
        "flowrun: where async setup tasks run (thread or asyncio-session)",
        type="string",
        default="",
    )
    group.addoption(
        "--flowrun-xdist",
        dest="flowrun_xdist",
        metavar="MODE",
        default=None,
        help="Under pytest-xdist: 'per-worker' (each worker runs the setup its tests need, "
        "the default) or 'once' (the controller runs it once for all workers and tears it "
        "down after the last one). Ini: flowrun_xdist.",
    )
    parser.addini(
        "flowrun_xdist",
        "flowrun: who runs the setup under pytest-xdist (per-worker or once)",
        type="string",
        default="",
    )
    parser.addini(
        "flowrun_max_parallel",
        "flowrun: the most setup tasks running at once (a whole number >= 1)",
        type="string",
        default="",
    )
    parser.addini(
        "flowrun_timeout",
        "flowrun: default timeout in seconds of setup tasks without timeout_s",
        type="string",
        default="",
    )
    parser.addini(
        "flowrun_dag",
        "flowrun: print the setup DAG and the per-task table (true/false)",
        type="string",
        default="",
    )
    parser.addini(
        "flowrun_report",
        "flowrun: path of the JSON report of the setup run",
        type="string",
        default="",
    )


def read_settings(config: pytest.Config) -> Settings:
    """The validated options; raises ``pytest.UsageError`` naming a bad option and valid values."""
    explicit: list[str] = []

    def value(name: str) -> tuple[str | None, str]:
        cli = config.getoption(name)
        if cli is not None:
            explicit.append(name)
            return str(cli) if not isinstance(cli, bool) else str(cli).lower(), f"--{_dash(name)}"
        ini = config.getini(name)
        text = ini.strip() if isinstance(ini, str) else ""
        if text:
            explicit.append(name)
            return text, f"ini option {name}"
        return None, name

    raw, where = value("flowrun_max_parallel")
    max_parallel = DEFAULT_MAX_PARALLEL
    if raw is not None:
        try:
            max_parallel = int(raw)
        except ValueError:
            max_parallel = 0
        if max_parallel < 1:
            raise pytest.UsageError(f"{where}={raw!r} is invalid: expected a whole number >= 1")

    raw, where = value("flowrun_timeout")
    timeout_s: float | None = None
    if raw is not None and raw.lower() != "none":
        try:
            timeout_s = float(raw)
        except ValueError:
            timeout_s = -1.0
        if math.isnan(timeout_s) or timeout_s < 0 or math.isinf(timeout_s):
            raise pytest.UsageError(
                f"{where}={raw!r} is invalid: expected a number of seconds > 0, "
                "or 0 or 'none' for no default timeout"
            )
        if timeout_s == 0:
            timeout_s = None

    raw, where = value("flowrun_dag")
    show_dag = False
    if raw is not None:
        if raw.lower() not in _TRUE + _FALSE:
            raise pytest.UsageError(
                f"{where}={raw!r} is invalid: expected one of {', '.join(_TRUE + _FALSE[:-1])}"
            )
        show_dag = raw.lower() in _TRUE

    raw, where = value("flowrun_loop")
    loop = LOOP_MODES[0] if raw is None else raw
    if loop not in LOOP_MODES:
        raise pytest.UsageError(
            f"{where}={raw!r} is invalid: expected one of {', '.join(LOOP_MODES)}"
        )

    raw, where = value("flowrun_xdist")
    xdist = XDIST_MODES[0] if raw is None else raw
    if xdist not in XDIST_MODES:
        raise pytest.UsageError(
            f"{where}={raw!r} is invalid: expected one of {', '.join(XDIST_MODES)}"
        )

    report_path: Path | None = None
    cli_report = config.getoption("flowrun_report")
    if cli_report is not None:
        explicit.append("flowrun_report")
        if not str(cli_report).strip():
            raise pytest.UsageError("--flowrun-report needs a file path, got ''")
        report_path = config.invocation_params.dir / Path(cli_report)
    else:
        ini_report = config.getini("flowrun_report")
        if isinstance(ini_report, str) and ini_report.strip():
            explicit.append("flowrun_report")
            base = config.inipath.parent if config.inipath is not None else config.rootpath
            report_path = base / Path(ini_report.strip())

    raw, where = value("flowrun_resources")
    resources = _resources(raw, where) if raw is not None else ()
    fixtures = _fixtures(config, explicit)

    return Settings(
        max_parallel,
        timeout_s,
        show_dag,
        report_path,
        tuple(explicit),
        resources,
        summary_path=_summary_path(config),
        github_summary=bool(config.getini("flowrun_github_summary")),
        report_results=bool(config.getini("flowrun_report_results")),
        fixtures=fixtures,
        loop=loop,
        xdist=xdist,
    )


def serves_once(config: pytest.Config) -> bool:
    """Is this a pytest-xdist worker whose setup the controller runs (``once``)?

    Asked while pytest loads the initial conftests, before xdist hands the worker its
    ``workerinput``: the controller in ``once`` mode puts its pid in the environment
    its workers inherit (``ONCE_ENV``), and a worker is its child. A pytest started from
    a test inherits the variable too, but is not the controller's child.
    """
    return os.environ.get(ONCE_ENV) == str(os.getppid())


def _fixtures(config: pytest.Config, explicit: list[str]) -> tuple[str, ...]:
    """The promoted fixtures: ``--flowrun-fixture`` (repeatable) and ``flowrun_fixtures``
    together, each a name or a pattern, in the order given."""
    names: list[str] = []
    ini = config.getini("flowrun_fixtures")
    for raw in [ini if isinstance(ini, str) else "", *(config.getoption("flowrun_fixture") or ())]:
        for name in str(raw).split():
            if name not in names:
                names.append(name)
    if names:
        explicit.append("flowrun_fixtures")
    return tuple(names)


def _summary_path(config: pytest.Config) -> Path | None:
    """``--flowrun-summary`` from the invocation directory, or ``flowrun_summary`` from the
    ini file's; raises ``pytest.UsageError`` for an empty path on the command line."""
    cli = config.getoption("flowrun_summary")
    if cli is not None:
        if not str(cli).strip():
            raise pytest.UsageError("--flowrun-summary needs a file path, got ''")
        return config.invocation_params.dir / Path(cli)
    ini = config.getini("flowrun_summary")
    if isinstance(ini, str) and ini.strip():
        base = config.inipath.parent if config.inipath is not None else config.rootpath
        return base / Path(ini.strip())
    return None


def _resources(raw: str, where: str) -> tuple[tuple[str, int], ...]:
    """``docker=2 db=1`` (spaces or commas between) as ``(("docker", 2), ("db", 1))``."""
    caps: dict[str, int] = {}
    for item in raw.replace(",", " ").split():
        name, equals, number = item.partition("=")
        problem = None
        if not equals or not name.strip():
            problem = f"{item!r} is not NAME=N"
        elif not number.strip().isdigit() or int(number) < 1:
            problem = f"the cap of {name!r} must be a whole number >= 1, got {number!r}"
        elif name in caps:
            problem = f"{name!r} is capped twice"
        if problem is not None:
            raise pytest.UsageError(
                f"{where}={raw!r} is invalid: {problem} (expected e.g. 'docker=2 db=1')"
            )
        caps[name] = int(number)
    return tuple(caps.items())


def _dash(name: str) -> str:
    return name.replace("_", "-")

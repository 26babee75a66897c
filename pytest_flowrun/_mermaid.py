"""The CI summary's Mermaid charts: the run as a gantt chart, the DAG as a flowchart.

:func:`gantt_lines` draws a run report (``flowrun._report.build_report``'s dict) as a
Setup section with one bar per task and a Teardown section with one bar per teardown;
:func:`flowchart_lines` draws its DAG, ``parent --> child``, nodes styled by status. Both
return the chart's lines without the code fence; ``pytest_flowrun._markdown`` puts them in
the summary. Every name shown goes through :func:`pytest_flowrun._redact.mask_url_passwords`.

Mermaid is strict in places where a task name is free: a gantt task's name ends at the
first ``:``, and a line that starts with a keyword (``title``, ``section``, ...) is that
statement; a flowchart node id must not be a keyword (``end``). So ids are generated
(``s0``, ``d0``, ``n0``), never derived from names, and names are written with Mermaid's
entity codes (``#58;`` for ``:``), which Mermaid turns back into the characters when it
renders. ``tests/mermaid/`` checks the output with the real Mermaid library.

Pure functions over plain JSON data: imports only the plugin's ``_redact``; never pytest
or the runtime.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from typing import Any

from pytest_flowrun._redact import mask_url_passwords

#: The statuses of a failure: their bars are tagged ``crit`` (and ``_markdown`` lists them).
FAILED_STATUSES = ("FAILED", "TIMED_OUT")

# Flowchart node styles by task status (a class each; ``classDef default`` is Mermaid's own).
_NODE_STYLES = {
    "SUCCESS": ("success", "fill:#d3f4d1,stroke:#2d7d2a,color:#111"),
    "FAILED": ("failed", "fill:#f9d0d0,stroke:#b42318,stroke-width:2px,color:#111"),
    "TIMED_OUT": ("timed_out", "fill:#fde4c8,stroke:#b54708,stroke-width:2px,color:#111"),
    "SKIPPED": ("skipped", "fill:#eeeeee,stroke:#888888,stroke-dasharray:4 3,color:#555"),
    "CANCELLED": ("cancelled", "fill:#eeeeee,stroke:#555555,stroke-dasharray:2 2,color:#555"),
}
_OTHER_STYLE = ("unfinished", "fill:#ffffff,stroke:#888888,color:#555")

# Lowercased starts of a gantt line that Mermaid's lexer reads as something other than a
# task name (its keywords, comments, strings, click handlers, ISO dates).
_GANTT_KEYWORDS = (
    "accdescr",
    "acctitle",
    "axisformat",
    "call",
    "click",
    "dateformat",
    "excludes",
    "gantt",
    "href",
    "inclusiveenddates",
    "includes",
    "section",
    "tickinterval",
    "title",
    "todaymarker",
    "topaxis",
    "weekday",
    "weekend",
)
_GANTT_SAFE_START = re.compile(r"[^\W\d]", re.UNICODE)  # a letter (or '_'), not a digit

# Axis ticks: (step in ms, Mermaid's tickInterval). The first step giving at most 10 ticks.
_TICKS = (
    (100, "100millisecond"),
    (200, "200millisecond"),
    (500, "500millisecond"),
    (1_000, "1second"),
    (2_000, "2second"),
    (5_000, "5second"),
    (10_000, "10second"),
    (15_000, "15second"),
    (30_000, "30second"),
    (60_000, "1minute"),
    (120_000, "2minute"),
    (300_000, "5minute"),
    (600_000, "10minute"),
    (900_000, "15minute"),
    (1_800_000, "30minute"),
    (3_600_000, "1hour"),
)


# -- the gantt chart ----------------------------------------------------------------------


def gantt_lines(report: Mapping[str, Any]) -> list[str]:
    """The lines of the Mermaid gantt chart of ``report`` (without the code fence).

    Times are milliseconds since the run started (``dateFormat x``). The Setup section has
    one bar per task, from ``offset_s`` for ``duration_s``; a task that never started
    (skipped, cancelled in the queue) is a milestone, at the end of the failure that skipped
    it or else at the end of the setup. The Teardown section has a bar per task with a
    teardown. Failed and timed-out bars, and failed or timed-out teardowns, are ``crit``.
    """
    tasks: Mapping[str, Mapping[str, Any]] = report["tasks"]
    ends: dict[str, int] = {}
    for name, task in tasks.items():
        start = _ms(task.get("offset_s"))
        if start is not None:
            ends[name] = start + max(1, _ms(task.get("duration_s")) or 0)
    setup_end = max(ends.values(), default=0)
    teardown_starts = _teardown_offsets_ms(report, setup_end)
    last = max(
        [setup_end] + [start + _teardown_ms(tasks[name]) for name, start in teardown_starts.items()]
    )
    step, interval = next(((s, i) for s, i in _TICKS if last / s <= 10), _TICKS[-1])
    if step < 1_000:
        axis = "%S.%L"
    elif last < 60_000:
        axis = "%Ss"
    else:
        # Minutes and seconds of 1970-01-01 in the viewer's time zone: right in every zone
        # whose offset is whole hours, and runs this long are rare.
        axis = "%M:%S"
    lines = [
        "gantt",
        "    dateFormat x",
        f"    axisFormat {axis}",
        f"    tickInterval {interval}",
        "    todayMarker off",
        "    section Setup",
    ]
    for i, (name, task) in enumerate(tasks.items()):
        status = str(task["status"])
        tags = ["crit"] if status in FAILED_STATUSES else []
        label = name if status == "SUCCESS" else f"{name} ({status.lower().replace('_', ' ')})"
        if name in ends:
            start, end = ends[name] - max(1, _ms(task.get("duration_s")) or 0), ends[name]
        else:
            cause = task.get("skipped_because")
            start = end = ends.get(str(cause), setup_end) if cause else setup_end
            tags.append("milestone")
        lines.append(_gantt_bar(label, tags, f"s{i}", start, end))
    if teardown_starts:
        lines.append("    section Teardown")
        for i, (name, task) in enumerate(tasks.items()):
            if name not in teardown_starts:
                continue
            status = str(task["teardown"]["status"])
            tags = ["crit"] if status in FAILED_STATUSES else []
            label = name if status == "SUCCESS" else f"{name} ({status.lower().replace('_', ' ')})"
            start = teardown_starts[name]
            lines.append(_gantt_bar(label, tags, f"d{i}", start, start + _teardown_ms(task)))
    return lines


def _gantt_bar(label: str, tags: list[str], bar_id: str, start: int, end: int) -> str:
    return f"    {_gantt_text(label)} :{', '.join([*tags, bar_id])}, {start}, {end}"


def _teardown_ms(task: Mapping[str, Any]) -> int:
    return max(1, _ms(task["teardown"].get("duration_s")) or 0)


def teardown_estimated(tasks: Mapping[str, Mapping[str, Any]]) -> bool:
    """True if a teardown's start time is missing from the report, so the gantt chart
    estimates it (see :func:`gantt_lines`)."""
    return any(
        task.get("teardown") is not None and task["teardown"].get("offset_s") is None
        for task in tasks.values()
    )


def _teardown_offsets_ms(report: Mapping[str, Any], setup_end: int) -> dict[str, int]:
    """When each teardown started, in ms since the run started.

    From ``teardown["offset_s"]`` when the report has it. Otherwise estimated the way the
    scheduler tears down: a task once every task depending on it is torn down, the ones
    with nothing depending on them first, all as early as that allows, and the last one
    ending when the run ended (``duration_s``, teardown included).
    """
    tasks: Mapping[str, Mapping[str, Any]] = report["tasks"]
    torn = [name for name, task in tasks.items() if task.get("teardown") is not None]
    if not torn:
        return {}
    if not teardown_estimated(tasks):
        return {name: _ms(tasks[name]["teardown"]["offset_s"]) or 0 for name in torn}
    children: dict[str, list[str]] = {name: [] for name in tasks}
    for name, task in tasks.items():
        for parent in task.get("deps") or ():
            if parent in children:
                children[parent].append(name)
    relative: dict[str, int] = {}
    for name in reversed(_topological(tasks)):  # children before their parents
        relative[name] = max(
            (
                relative[child] + (_teardown_ms(tasks[child]) if child in torn else 0)
                for child in children[name]
            ),
            default=0,
        )
    span = max(relative[name] + _teardown_ms(tasks[name]) for name in torn)
    run_end = _ms(report.get("duration_s"))
    origin = setup_end if run_end is None else max(setup_end, run_end - span)
    return {name: origin + relative[name] for name in torn}


def _topological(tasks: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The task names, parents first; ties (and anything left by a cycle) in report order."""
    pending = {
        name: {d for d in task.get("deps") or () if d in tasks and d != name}
        for name, task in tasks.items()
    }
    order: list[str] = []
    done: set[str] = set()
    while pending:
        ready = [name for name, deps in pending.items() if deps <= done]
        if not ready:  # not a DAG: keep going in report order rather than loop forever
            ready = [next(iter(pending))]
        for name in ready:
            del pending[name]
            done.add(name)
            order.append(name)
    return order


def _gantt_text(text: str) -> str:
    """``text`` as a gantt task name: one line, no ``:`` or ``#`` of its own (as
    entity codes), and never starting like a keyword."""
    text = " ".join(mask_url_passwords(text).split())
    text = _entities(text, "#:")
    if not text:
        return "#32;"
    lowered = text.lower()
    unsafe = not _GANTT_SAFE_START.match(text) or lowered.startswith(_GANTT_KEYWORDS)
    if unsafe and not text.startswith("#"):  # an entity code is a safe start already
        text = f"#{ord(text[0])};{text[1:]}"
    return text


# -- the flowchart ------------------------------------------------------------------------


def flowchart_lines(report: Mapping[str, Any]) -> list[str]:
    """The lines of the Mermaid flowchart of ``report``'s DAG (without the code fence).

    One node per task (``n0``, ``n1``... in report order, labelled with the task's name and,
    unless it succeeded, its status), an edge ``parent --> child`` per dependency, the
    critical path's edges drawn thick, and a class per status.
    """
    tasks: Mapping[str, Mapping[str, Any]] = report["tasks"]
    ids = {name: f"n{i}" for i, name in enumerate(tasks)}
    lines = ["flowchart LR"]
    classes: dict[str, list[str]] = {}
    for name, task in tasks.items():
        status = str(task["status"])
        label = _node_text(name)
        if status != "SUCCESS":
            label += "<br/>" + _node_text(status)
        lines.append(f'    {ids[name]}["{label}"]')
        style = _NODE_STYLES.get(status, _OTHER_STYLE)
        classes.setdefault(style[0], []).append(ids[name])
    path = [str(n) for n in report.get("critical_path") or ()]
    on_path = set(itertools.pairwise(path))
    thick: list[int] = []
    edge = 0
    for name, task in tasks.items():
        for parent in task.get("deps") or ():
            if parent not in ids:  # not in this run: nothing to draw it from
                continue
            if (parent, name) in on_path:
                thick.append(edge)
            lines.append(f"    {ids[parent]} --> {ids[name]}")
            edge += 1
    for class_name, css in [*_NODE_STYLES.values(), _OTHER_STYLE]:
        if class_name in classes:
            lines.append(f"    classDef {class_name} {css}")
    for class_name, members in classes.items():
        lines.append(f"    class {','.join(members)} {class_name}")
    if thick:
        lines.append(f"    linkStyle {','.join(map(str, thick))} stroke-width:3px")
    return lines


def _node_text(text: str) -> str:
    """``text`` for a quoted flowchart label: one line, with Mermaid's entity codes for the
    characters that would end the quote, start an entity, or be read as HTML or Markdown."""
    text = " ".join(mask_url_passwords(text).split())
    return _entities(text, '#"<>&`') or "#32;"


def _entities(text: str, characters: str) -> str:
    # '#' first, since the codes written for the others start with it.
    return "".join(f"#{ord(c)};" if c in characters else c for c in text)


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(float(seconds) * 1000)

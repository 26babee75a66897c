"""Keeping secrets out of artifacts: URL passwords masked, task results left out.

A setup task's result is often a secret (a token, a DSN with its password), and the JSON
report, the Markdown summary and the terminal all end up in CI logs and artifacts. So:

- every string that is shown passes through :func:`mask_url_passwords`:
  ``postgres://app:s3cret@db:5432/app`` becomes ``postgres://app:***@db:5432/app``;
- the results are left out unless the user asks for them back in the JSON report
  (ini ``flowrun_report_results = true``): :func:`strip_results`, :func:`redact_report`.

Pure functions over plain JSON data: nothing here imports pytest or the runtime.
"""

from __future__ import annotations

import re
from typing import Any

#: What a masked password reads as.
MASK = "***"

# scheme://user:password@host. The user stops at the first ':'; the password runs to the
# last '@' before the host (a raw DSN may hold an '@' in its password), and the authority
# ends at '/', '?', '#' or whitespace, so a later URL is never swallowed. Compiled on first
# use, by ``re``'s cache: most sessions never show a URL, and this module loads in every
# session that has pytest-xdist.
_URL_PASSWORD = r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/?#@]*):(?P<password>[^\s/?#]*)@"


def mask_url_passwords(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ``***``.

    ``"redis://:hunter2@cache/0 and https://app:p@ss@api"`` becomes
    ``"redis://:***@cache/0 and https://app:***@api"``. A URL with a user and no password
    (``ssh://git@host``) and text without URLs come back unchanged.
    """
    if "://" not in text:  # the common case, and the cheap one
        return text
    return re.sub(_URL_PASSWORD, _mask, text)


def _mask(match: re.Match[str]) -> str:
    if not match.group("password"):
        return match.group(0)
    return f"{match.group('head')}:{MASK}@"


def redact(value: Any) -> Any:
    """A copy of the JSON data ``value`` with :func:`mask_url_passwords` applied to every
    string in it, dict keys included; other values are returned as they are."""
    if isinstance(value, str):
        return mask_url_passwords(value)
    if isinstance(value, dict):
        return {redact(k): redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value


def strip_results(report: dict[str, Any]) -> dict[str, Any]:
    """A copy of the run report without the ``result`` of any task; ``report`` is left
    untouched. The other keys of each task entry stay as they are."""
    tasks = report.get("tasks")
    if not isinstance(tasks, dict):
        return dict(report)
    stripped = {
        name: {k: v for k, v in entry.items() if k != "result"}
        if isinstance(entry, dict)
        else entry
        for name, entry in tasks.items()
    }
    return {**report, "tasks": stripped}


def redact_report(report: dict[str, Any], *, results: bool = False) -> dict[str, Any]:
    """The run report as it may go into an artifact: task results left out unless
    ``results`` (ini ``flowrun_report_results``), and every URL password masked, in the
    results kept too."""
    redacted: dict[str, Any] = redact(report if results else strip_results(report))
    return redacted

"""Redaction: URL passwords masked wherever they appear, task results left out by default."""

from __future__ import annotations

import copy
import json

import pytest

from pytest_flowrun._redact import MASK, mask_url_passwords, redact, redact_report, strip_results

from . import _reports


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("postgres://app:s3cret@db:5432/app", "postgres://app:***@db:5432/app"),
        ("postgresql+psycopg://app:s3cret@db/app", "postgresql+psycopg://app:***@db/app"),
        ("redis://:hunter2@cache/0", "redis://:***@cache/0"),
        ("amqp://app:p@ss@broker//", "amqp://app:***@broker//"),
        ("https://app:tok3n@api.example/v1?x=1#f", "https://app:***@api.example/v1?x=1#f"),
        (
            "primary postgres://a:one@h1/db, replica postgres://b:two@h2/db",
            "primary postgres://a:***@h1/db, replica postgres://b:***@h2/db",
        ),
        ("Engine(url='mysql://root:pw@localhost/x')", "Engine(url='mysql://root:***@localhost/x')"),
        ("a://u:p@h,b://v@w", "a://u:***@h,b://v@w"),
    ],
)
def test_the_password_of_a_url_is_masked(text: str, masked: str) -> None:
    assert mask_url_passwords(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "ssh://git@github.invalid/repo",  # a user, no password
        "http://user:@host/",  # an empty password
        "https://api.example:8443/v1",  # a port, not a password
        "user:password@host",  # not a URL
        "time 12:30@noon",
        "",
    ],
)
def test_text_without_a_url_password_is_left_alone(text: str) -> None:
    assert mask_url_passwords(text) == text


def test_the_mask() -> None:
    assert MASK == "***"


def test_redact_masks_every_string_of_json_data_keys_included() -> None:
    data = {
        "dsn": "postgres://a:pw@h/db",
        "postgres://k:pw@h/db": [1, 2.5, None, True, ("x://u:pw@h",)],
        "nested": {"list": ["redis://:pw@c/0"]},
    }
    assert redact(data) == {
        "dsn": "postgres://a:***@h/db",
        "postgres://k:***@h/db": [1, 2.5, None, True, ["x://u:***@h"]],
        "nested": {"list": ["redis://:***@c/0"]},
    }


def test_strip_results_leaves_out_every_result_and_nothing_else() -> None:
    report = _reports.success_report()
    original = copy.deepcopy(report)
    stripped = strip_results(report)
    assert report == original  # not modified
    for name, task in stripped["tasks"].items():
        assert "result" not in task
        assert {**task, "result": report["tasks"][name]["result"]} == report["tasks"][name]
    assert {k: v for k, v in stripped.items() if k != "tasks"} == {
        k: v for k, v in report.items() if k != "tasks"
    }


def test_strip_results_of_a_report_without_tasks() -> None:
    assert strip_results(_reports.empty_report()) == _reports.empty_report()


def test_a_redacted_report_has_no_results_and_no_passwords() -> None:
    report = _reports.success_report()
    report["tasks"]["migrations"]["error"] = _reports.error("E", f"at {_reports.DSN}")
    text = json.dumps(redact_report(report))
    assert '"result"' not in text
    assert "hunter2" not in text
    assert "postgres://app:***@db:5432/app" in text


def test_results_kept_on_request_are_masked_too() -> None:
    redacted = redact_report(_reports.success_report(), results=True)
    assert redacted["tasks"]["api"]["result"] == "postgres://app:***@db:5432/app"
    assert redacted["tasks"]["token"]["result"] == "secret-token"  # not a URL: the user asked

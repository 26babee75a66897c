"""minikv's pytest plugin: ``minikv_proc``, a minikv server for the test session.

Load it with ``pytest_plugins = ["minikv.pytest_plugin"]`` in a conftest (or ``-p
minikv.pytest_plugin``). Like pytest-redis's ``redis_proc``, the fixture takes ``request``
(to read its options) and ``tmp_path_factory`` (for the server's data directory), starts
the server as a child process, waits until it accepts connections, and stops it at the
end of the session. Options:

* ``--minikv-host`` (default ``127.0.0.1``);
* ini ``minikv_load_delay``: how long the server takes to load its snapshot at start, in
  seconds (default 0);
* ini ``minikv_timeout``: how long to wait for it to start, or to stop (default 10).
"""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["MinikvProc", "minikv_proc"]

_SERVER = Path(__file__).with_name("server.py")


@dataclass(frozen=True, slots=True)
class MinikvProc:
    """A running minikv server: where it listens, its process id and its data directory."""

    host: str
    port: int
    pid: int
    datadir: Path


def pytest_addoption(parser: pytest.Parser) -> None:
    """minikv's command-line and ini options."""
    parser.addoption("--minikv-host", default="127.0.0.1", help="minikv: the address to bind")
    parser.addini("minikv_load_delay", "minikv: seconds the server takes to start", default="0")
    parser.addini("minikv_timeout", "minikv: seconds to wait for start and stop", default="10")


@pytest.fixture(scope="session")
def minikv_proc(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MinikvProc]:
    """A minikv server for the session, stopped (its data written to disk) afterwards."""
    host = request.config.getoption("minikv_host")
    timeout_s = float(request.config.getini("minikv_timeout"))
    datadir = tmp_path_factory.mktemp("minikv")
    command = [sys.executable, str(_SERVER), "--host", host, "--port", "0", "--dir", str(datadir)]
    command += ["--load-delay", request.config.getini("minikv_load_delay")]
    with (datadir / "server.log").open("wb") as log:
        # In a session of its own, so that a Ctrl-C meant for pytest does not stop it mid-start:
        # the fixture's teardown stops it, and it exits when pytest dies (its stdin closes).
        process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            start_new_session=True,
        )
    try:
        port = _wait_until_ready(process, timeout_s)
        yield MinikvProc(host, port, process.pid, datadir)
    finally:
        _stop(process, timeout_s)


def _wait_until_ready(process: subprocess.Popen[bytes], timeout_s: float) -> int:
    """The port from the server's ``ready <port>`` line; raises ``RuntimeError`` if it
    exits or stays silent for ``timeout_s``."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout_s
    output = b""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while b"\n" not in output:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RuntimeError(f"minikv did not start within {timeout_s}s")
            if selector.select(remaining):
                chunk = os.read(process.stdout.fileno(), 1024)
                if not chunk:
                    raise RuntimeError(f"minikv exited with code {process.wait()} at start")
                output += chunk
    return int(output.split()[1])


def _stop(process: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Stop the server (SIGTERM, then SIGKILL after ``timeout_s``) and close its pipes."""
    process.terminate()
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    for pipe in (process.stdin, process.stdout):
        if pipe is not None:
            pipe.close()

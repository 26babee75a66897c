"""Child processes standing in for servers, and the check that none is left running.

``SERVERS_HELPER`` goes into a generated conftest (after ``LOG_HELPER``): ``start(name)``
starts a ``python -c "import time; time.sleep(60)"`` child and writes its pid to
``pids/<name>.pid``; ``stop(proc)`` kills and reaps it. ``alive(path)`` names the servers
of a suite still running; the ``leftovers`` fixture (in ``conftest.py``) kills whatever a
failing test left.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

SERVERS_HELPER = """\
import subprocess as _subprocess
import sys as _sys

_PIDS = _pathlib.Path(__file__).resolve().parent / "pids"


def start(name):
    proc = _subprocess.Popen(
        [_sys.executable, "-c", "import time; time.sleep(60)"], stdin=_subprocess.DEVNULL
    )
    _PIDS.mkdir(exist_ok=True)
    (_PIDS / f"{name}.pid").write_text(str(proc.pid))
    return proc


def stop(proc):
    proc.kill()
    proc.wait()

"""


def pids(path: Path) -> dict[str, int]:
    """The pid of each server started under ``path``, by name."""
    directory = path / "pids"
    if not directory.is_dir():
        return {}
    return {p.stem: int(p.read_text()) for p in sorted(directory.glob("*.pid"))}


def is_alive(pid: int) -> bool:
    """Is process ``pid`` running (a zombie, killed but not reaped yet, is not)?"""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def alive(path: Path, *, within_s: float = 2.0) -> list[str]:
    """The servers started under ``path`` still running ``within_s`` from now."""
    deadline = time.monotonic() + within_s
    while True:
        running = [name for name, pid in pids(path).items() if is_alive(pid)]
        if not running or time.monotonic() > deadline:
            return running
        time.sleep(0.05)


def popen_pytest(path: Path, *args: str, new_session: bool = False) -> subprocess.Popen[bytes]:
    """Start pytest on the suite in ``path`` in its own process (for signals); with
    ``new_session``, in a process group of its own, as CI runs a job (``os.killpg``)."""
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=new_session,
    )

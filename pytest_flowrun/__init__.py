"""pytest-flowrun: runs a test suite's slow setup concurrently as a flowrun DAG.

Installed with flowrun, the plugin loads by itself (``-p flowrun`` loads it when plugin
autoloading is off, ``-p no:flowrun`` turns it off). In a ``conftest.py``::

    @task                                   # a setup step: a session fixture named "db"
    def db(): ...

    @task                                   # a task fixture: @task above @pytest.fixture
    @pytest.fixture(scope="session")
    def api(db, tmp_path_factory): ...      # "db" is a task: a dependency; the other is a
                                            # session fixture, resolved by pytest

The tasks that the selected tests need start together when the first such test is set
up, run under ``--flowrun-max-parallel`` with ``--flowrun-timeout``, and each test waits
only for its own. ``pytest_flowrun.hooks`` declares ``pytest_flowrun_context``.

The package imports nothing: ``plugin`` (the pytest11 entry point) sits on top of the
private modules, which import one another one way, never ``plugin`` back.
"""

from __future__ import annotations

"""Names the plugin's modules share: attribute names, the DAG's name, the cache key.

A leaf: it imports nothing, from the plugin or elsewhere, so that any module of the
plugin (``plugin.py`` first, which every pytest run imports) may import it for free.
"""

from __future__ import annotations

#: ``flowrun.task.SPEC_ATTRIBUTE``, repeated so that a module without tasks is recognised
#: without importing flowrun (a test pins the two together).
SPEC_ATTRIBUTE = "__flowrun_task__"
#: Set on the functions of the fixtures this plugin generates, to what they replaced.
GENERATED_ATTRIBUTE = "__flowrun_fixture__"
#: The setup DAG's name in reports.
DAG_NAME = "pytest-setup"
#: Where observed task durations are kept in pytest's cache.
DURATIONS_KEY = "flowrun/durations"

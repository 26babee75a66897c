"""The pytest plugin (loaded as ``-p flowrun``)."""

from __future__ import annotations

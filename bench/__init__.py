"""flowrun's benchmark suite: ``python -m bench`` (or ``python bench/run.py``).

Every target is a ratio of two figures measured side by side in the same run, so the
verdicts hold on a slow or noisy machine; see ``bench/README.md``.
"""

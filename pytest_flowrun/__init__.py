"""pytest-flowrun: runs a test suite's slow setup concurrently as a flowrun DAG."""

"""pytest glue for the integration tests: every test is a plain function that uses harness.py;
after each one the processes and servers it started are stopped. MELTP_TEST_SKIP (a
comma-separated list of name parts) leaves tests out with a printed reason (make test-asan)."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


@pytest.fixture(autouse=True)
def _cleanup():
    yield
    harness.cleanup()


def pytest_collection_modifyitems(config, items):
    skip = [x for x in os.environ.get("MELTP_TEST_SKIP", "").split(",") if x]
    if not skip:
        return
    for item in items:
        full = "%s:%s" % (item.module.__name__, item.name)
        if any(x in full for x in skip):
            item.add_marker(pytest.mark.skip(reason="left out by MELTP_TEST_SKIP"))

"""Tests of the trace stores; `conformance` is the suite every backend runs."""

import pytest

# conformance.py holds the assertions but is not a test module: have pytest rewrite them too.
pytest.register_assert_rewrite(f"{__name__}.conformance")

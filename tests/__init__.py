"""The test suite. Its shared helper modules hold assertions too: pytest rewrites them like
the test modules' own, so a failing comparison shows both sides."""

import pytest

pytest.register_assert_rewrite(
    "tests.dashboard_reference",
    "tests.helpers",
    "tests.rollup_scaffold",
    "tests.user_bitmaps_scaffold",
)

"""The custom-events table's pure parts: which names are custom, and the text sparkline."""

from __future__ import annotations

import pytest

from reports.selectors.custom_events import is_custom, sparkline


@pytest.mark.parametrize(
    ("name", "custom"),
    [("purchase", False), ("page_view", False), ("newsletter_signup", True), ("", True)],
)
def test_the_seven_ecommerce_types_are_not_custom(name, custom):
    assert is_custom(name) is custom


def test_sparkline_scales_to_the_busiest_bucket_and_keeps_one_mark_per_bucket():
    assert sparkline([0, 5, 10]) == "▁▅█"
    assert sparkline([0, 0]) == "▁▁"
    assert sparkline([]) == ""

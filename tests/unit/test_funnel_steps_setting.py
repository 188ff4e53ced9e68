"""REPORTS_FUNNEL_STEPS is checked at start-up: custom steps only between the e-commerce ones."""

from __future__ import annotations

import pytest

from reports.checks import funnel_steps_errors

FIVE = ["page_view", "product_view", "add_to_cart", "checkout_start", "purchase"]


@pytest.mark.parametrize(
    "steps",
    [FIVE, [*FIVE[:2], "newsletter_signup", *FIVE[2:]], ["Video Played", *FIVE]],
)
def test_the_five_steps_with_custom_steps_between_them_are_a_funnel(steps):
    assert funnel_steps_errors(steps) == []


@pytest.mark.parametrize(
    ("steps", "problem"),
    [
        (FIVE[:4], "in this order"),
        ([*FIVE, "newsletter_signup"], "end with purchase"),
        ([FIVE[1], FIVE[0], *FIVE[2:]], "in this order"),
        (["x", "x", *FIVE], "repeat"),
        ([*FIVE[:2], "search", *FIVE[2:]], "not a funnel step"),
        (["a\x00b", *FIVE], "not an event name"),
    ],
)
def test_other_lists_are_refused_with_a_reason(steps, problem):
    assert any(problem in error for error in funnel_steps_errors(steps))

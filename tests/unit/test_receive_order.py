"""The receive-order watermark helpers (events.receive_order): which rows a position holds and
the SQL ranges a fold takes, with and without a column prefix. No database."""

from __future__ import annotations

import datetime as dt

import pytest

from events.receive_order import START, ReceivePosition, after_sql, range_sql, until_sql

AT = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)
MARK = ReceivePosition(AT, 42)


@pytest.mark.parametrize(
    ("received_at", "pk", "held"),
    [
        (AT - dt.timedelta(microseconds=1), 10_000, True),  # earlier time, any id
        (AT, 42, True),  # the position itself
        (AT, 43, False),  # same time, later id
        (AT + dt.timedelta(microseconds=1), 1, False),
    ],
)
def test_a_position_holds_the_rows_up_to_it_in_receive_order(received_at, pk, held):
    """(received_at, id) order: a tie on received_at is broken by id."""
    assert MARK.holds(received_at, pk) is held
    assert not START.holds(received_at, pk)


def test_after_the_start_is_every_row():
    assert START.is_start and START.as_tuple() == (None, 0)
    assert after_sql(START) == ("1 = 1", [])


def test_after_sql_leads_with_the_index_range_and_takes_a_prefix():
    """The leading `received_at >=` lets PostgreSQL use the received_at index."""
    where, params = after_sql(MARK, "t.")
    assert where == "t.received_at >= %s AND (t.received_at > %s OR t.id > %s)"
    assert params == [AT, AT, 42]


def test_a_range_from_the_start_is_only_the_upper_bound():
    upper = ReceivePosition(AT, 7)
    assert range_sql(START, upper) == until_sql(upper)
    assert until_sql(upper) == (
        "(received_at < %s OR (received_at = %s AND id <= %s))",
        [AT, AT, 7],
    )


def test_a_range_is_after_its_start_and_up_to_its_bound():
    upper = ReceivePosition(AT + dt.timedelta(hours=1), 99)
    where, params = range_sql(MARK, upper)
    assert where == (
        "(received_at < %s OR (received_at = %s AND id <= %s)) "
        "AND received_at >= %s AND (received_at > %s OR id > %s)"
    )
    assert params == [upper.received_at, upper.received_at, 99, AT, AT, 42]

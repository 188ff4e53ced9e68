"""The fold-order watermark helpers (events.receive_order): which rows a position holds and
the SQL ranges a fold takes, with and without a column prefix. No database."""

from __future__ import annotations

import pytest

from events.receive_order import START, ReceivePosition, after_sql, range_sql, until_sql

MARK = ReceivePosition(1000, 42)


@pytest.mark.parametrize(
    ("txid", "pk", "held"),
    [
        (999, 10_000, True),  # an earlier transaction, any id
        (1000, 42, True),  # the position itself
        (1000, 43, False),  # same transaction, later id
        (1001, 1, False),  # a later transaction, even with a smaller id
    ],
)
def test_a_position_holds_the_rows_up_to_it_in_fold_order(txid, pk, held):
    """(txid, id) order: rows of one transaction are ordered by id."""
    assert MARK.holds(txid, pk) is held
    assert not START.holds(txid, pk)


def test_after_the_start_is_every_row():
    assert START.is_start
    assert after_sql(START) == ("1 = 1", [])


def test_after_sql_leads_with_the_index_range_and_takes_a_prefix():
    """The leading `txid >=` lets PostgreSQL use the (txid, id) index whatever its statistics."""
    where, params = after_sql(MARK, "t.")
    assert where == "t.txid >= %s AND (t.txid > %s OR t.id > %s)"
    assert params == [1000, 1000, 42]


def test_a_range_from_the_start_is_only_the_upper_bound():
    upper = ReceivePosition(1000, 7)
    assert range_sql(START, upper) == until_sql(upper)
    assert until_sql(upper) == ("txid <= %s AND (txid < %s OR id <= %s)", [1000, 1000, 7])


def test_a_range_is_after_its_start_and_up_to_its_bound():
    upper = ReceivePosition(1005, 99)
    where, params = range_sql(MARK, upper)
    assert where == (
        "txid <= %s AND (txid < %s OR id <= %s) AND txid >= %s AND (txid > %s OR id > %s)"
    )
    assert params == [1005, 1005, 99, 1000, 1000, 42]

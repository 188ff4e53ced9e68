"""CSV downloads of the dashboard tables: every table as a CSV attachment with the page's
filters, the same numbers as the page, a CSV link on every table (the KPI cards' too)."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest

from reports import csv_export

CSV_TABLES = [
    ("overview", "kpis"),
    ("overview", "series"),
    ("overview", "event_mix"),
    ("funnel", "steps"),
    ("products", "top_viewed"),
    ("products", "top_added"),
    ("products", "top_purchased"),
    ("products", "revenue_by_category"),
    ("audience", "devices"),
    ("audience", "countries"),
    ("live", "per_minute"),
    ("live", "newest"),
    ("quality", "pass_rate"),
    ("quality", "failing_rules"),
    ("quality", "quarantine"),
    ("quality", "incidents"),
    ("quality", "check_runs"),
]


def test_overview_kpi_table_links_its_csv(user_client, seeded):
    """The KPI cards have a CSV link like every other table, with the page's filters, and it
    downloads the KPI table."""
    response = user_client.get("/?preset=30d&device=mobile")
    link = '/overview/csv/kpis/?preset=30d&amp;device=mobile"'
    assert link in response.content.decode()
    rows = list(
        csv.reader(
            io.StringIO(
                user_client.get("/overview/csv/kpis/?preset=30d&device=mobile").content.decode()
            )
        )
    )
    assert rows[0] == ["kpi", "value", "previous", "change_pct"]
    assert {row[0] for row in rows[1:]} == set(response.context["data"]["kpis"])


@pytest.mark.parametrize(("page", "table"), CSV_TABLES)
def test_csv_download_of_every_table(user_client, seeded, page, table):
    """Every table downloads as a parseable CSV attachment with a descriptive file name."""
    response = user_client.get(f"/{page}/csv/{table}/?preset=30d")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    disposition = response["Content-Disposition"]
    assert disposition.startswith(f'attachment; filename="{page}-{table}-')
    assert disposition.endswith('.csv"')
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == csv_export.TABLES[page][table][0]
    assert all(len(row) == len(rows[0]) for row in rows)


def test_csv_contents_match_the_page(user_client, seeded):
    """Downloads carry the same numbers as the page, with the same filters applied."""
    series = list(
        csv.DictReader(io.StringIO(user_client.get("/overview/csv/series/").content.decode()))
    )
    assert sum(int(row["events"]) for row in series) == 8
    assert sum(Decimal(row["revenue"]) for row in series) == Decimal("20")
    steps = list(
        csv.DictReader(io.StringIO(user_client.get("/funnel/csv/steps/").content.decode()))
    )
    assert [(row["step"], row["sessions"]) for row in steps][:2] == [
        ("page_view", "3"),
        ("product_view", "2"),
    ]
    purchased = list(
        csv.DictReader(
            io.StringIO(user_client.get("/products/csv/top_purchased/").content.decode())
        )
    )
    assert purchased == [
        {"product_id": "sku_1", "category": "laptops", "count": "1", "revenue": "20.0"}
    ]
    devices = list(
        csv.DictReader(
            io.StringIO(user_client.get("/audience/csv/devices/?country=DE").content.decode())
        )
    )
    assert devices == [{"device_type": "mobile", "events": "2", "users": "1"}]


def test_csv_unknown_table_is_404(user_client, seeded):
    """A table name that does not exist is a 404, not a 500."""
    assert user_client.get("/overview/csv/nope/").status_code == 404
    assert user_client.get("/nope/csv/series/").status_code == 404

"""Reads of the quality app, one module per seam:

- `summary`: validation outcomes per bucket of receipt time, the rules failing most;
- `quarantine`: what waits in quarantine, by event type and failed rule; SQL for its filters;
- `live`: stored events per minute (the Live page);
- `incidents`: unresolved incidents and the charts they touch;
- `check_counts`: the counts dataset checks judge, from the check rollups plus the raw tail;
- `checks`: newest/oldest event, validation counts, rule counters, recent check runs;
- `check_history`: one check's runs, samples and incidents (its page);
- `evidence`: custom SQL check values, failing-row samples of failed runs;
- `freshness`: the README's KPI, share of events received within 5 minutes of their time;
- `retention`: days kept per kind and the oldest row of each (the Data quality page);
- `stored_events`: stored-event lookups for batch rules and rule trials;
- `intake` and `buckets`: what the others share (intake rollup watermarks and snapshot, time
  buckets).

Callers use `from quality import selectors` and `selectors.<name>`: every public read is
re-exported here under its own name. Dashboard signatures are a contract with the reports app
(the Data quality page); keep them.
"""

from quality.selectors.buckets import BUCKETS
from quality.selectors.check_counts import (
    category_counts,
    duplicate_counts,
    event_counts_in_windows,
    field_mean,
    field_null_counts,
    purchases_without_checkout,
)
from quality.selectors.check_history import check_history, sample_links
from quality.selectors.checks import (
    check_runs_recent,
    events_newest_timestamp,
    events_oldest_timestamp,
    rule_counts_since,
    validation_counts,
)
from quality.selectors.evidence import (
    custom_sql_value,
    duplicate_rows_sample,
    null_rows_sample,
    orphan_purchases_sample,
    quarantined_sample,
)
from quality.selectors.freshness import data_freshness
from quality.selectors.incidents import METRIC_TOUCHES, UNRESOLVED, incidents_open
from quality.selectors.intake import IntakeMarks, intake_marks
from quality.selectors.live import events_per_minute
from quality.selectors.quarantine import (
    quarantine_summary,
    quarantined_by_type,
    rejected_ids_failing_field_sql,
    rejected_ids_failing_rule_sql,
)
from quality.selectors.retention import RETENTION_KINDS, retention_days, retention_summary
from quality.selectors.shapes import late_counts, top_value_count
from quality.selectors.stored_events import (
    StoredEventFacts,
    events_of_sessions,
    events_sample,
    events_with_values,
)
from quality.selectors.summary import rules_failing_top, validation_pass_rate_series

__all__ = [
    "BUCKETS",
    "METRIC_TOUCHES",
    "RETENTION_KINDS",
    "UNRESOLVED",
    "IntakeMarks",
    "StoredEventFacts",
    "category_counts",
    "check_history",
    "check_runs_recent",
    "custom_sql_value",
    "data_freshness",
    "duplicate_counts",
    "duplicate_rows_sample",
    "event_counts_in_windows",
    "events_newest_timestamp",
    "events_of_sessions",
    "events_oldest_timestamp",
    "events_per_minute",
    "events_sample",
    "events_with_values",
    "field_mean",
    "field_null_counts",
    "incidents_open",
    "intake_marks",
    "late_counts",
    "null_rows_sample",
    "orphan_purchases_sample",
    "purchases_without_checkout",
    "quarantine_summary",
    "quarantined_by_type",
    "quarantined_sample",
    "rejected_ids_failing_field_sql",
    "rejected_ids_failing_rule_sql",
    "retention_days",
    "retention_summary",
    "rule_counts_since",
    "rules_failing_top",
    "sample_links",
    "top_value_count",
    "validation_counts",
    "validation_pass_rate_series",
]

"""What each check kind measures and its parameters: the admin form's help and the config
file's comments (one place, so the two cannot disagree)."""

KIND_HELP = {
    "freshness": "minutes since the newest event; fails above the threshold. params: {}",
    "volume_anomaly": "z-score of events in the last window vs the same window on previous "
    "days (same weekday once 3 weeks exist, else every day scaled by its weekday's level); "
    "noise is the larger of the baseline's scatter and sqrt(dispersion x expected). "
    'params: {"window_minutes": 60, "baseline_days": 28, "min_baseline_days": 3, '
    '"direction": "both|drop|spike", "dispersion": 6}',
    "null_rate": 'share of events with the field null or empty. params: {"field": "country", '
    '"event_types": [], "window_minutes": 60}',
    "duplicate_rate": "share of events in the window that repeat another event's "
    "(session_id, event_type, product_id, timestamp) under a different event_id. "
    'params: {"window_minutes": 60, "min_events": 1}',
    "distribution_drift": "distance between a field's distribution in the window and in the "
    'baseline days. method "vanished" scores the baseline share of values now under 2% of '
    'their expected count, judging only values expected min_expected times; "same_window": '
    "the same window on each baseline day (for mixes with a daily rhythm, like country). "
    'params: {"field": "device_type", "method": "tvd|psi|vanished", "same_window": false, '
    '"min_expected": 50, '
    '"window_minutes": 60, "baseline_days": 7, "min_events": 50}',
    "funnel_sanity": "share of purchases whose session has no checkout_start. "
    'params: {"window_minutes": 1440, "min_events": 1}',
    "validation_pass_rate": "accepted / (accepted + quarantined) in the window; fails BELOW "
    'the threshold (e.g. 0.995). params: {"window_minutes": 60}',
    "custom_sql": "one read-only SELECT returning one number (first column of the first row), "
    "run in a read-only transaction with a statement timeout; fails above the threshold, or "
    'below it with "fail_when": "below". params: {"sql": "SELECT count(*) FROM events_event '
    'WHERE ...", "fail_when": "above|below"}',
    "late_share": "share of events received in the window more than lag_minutes after their "
    'own timestamp (a late batch). params: {"window_minutes": 60, "lag_minutes": 60, '
    '"min_events": 1}',
    "top_share": "share of the window's events that carry the most frequent value of a field "
    '(one user or bot flooding). params: {"field": "user_id", "window_minutes": 60, '
    '"min_events": 1}',
    "mean_shift": "how many times the mean of a numeric field in the window differs from its "
    "baseline mean, either way (max(r, 1/r); prices sent in cents give 100). "
    'params: {"field": "price", "window_minutes": 60, "baseline_days": 7, "min_events": 1}',
}

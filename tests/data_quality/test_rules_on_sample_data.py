"""The default rule set against the generator's traffic: every bad event it plants lands in
quarantine (the rule-only kinds caught by a stored rule, by name), and no good event or
re-sent duplicate is refused. This is the demo's "find the bad events in quarantine"."""

from __future__ import annotations

from collections import Counter

import pytest
from django.utils import timezone

from events import sample_data as gen
from events.models import Event, RejectedEvent
from events.sample_data.load import RESENT_DUPLICATE, sample_data_load
from quality.models import QualityRule
from quality.services.defaults import defaults_load

pytestmark = pytest.mark.django_db

# Which stored default rule must catch each kind the schema layer lets through.
RULE_FOR_KIND = {
    "revenue_mismatch": "revenue-equals-price-times-quantity",
    "stale_timestamp": "timestamp-not-older-than-10-years",
    "orphan_checkout": "checkout-needs-known-session",
}


def test_default_rules_quarantine_every_bad_event_and_only_those():
    # A high bad rate so that the rare kinds (bad purchases, orphan checkouts) appear.
    config = gen.SampleConfig(
        events=30000,
        end=gen.default_end(timezone.now()),
        seed=11,
        days=3,
        bad_rate=0.3,
        chunk_events=30000,
    )
    defaults_load()
    summary = sample_data_load(config, workers=1)

    planted = Counter(e.kind for e in gen.sample_events(config) if e.kind is not None)
    assert set(RULE_FOR_KIND) <= set(planted), f"every rule-only kind is planted: {planted}"
    assert summary.accepted_bad_by_kind == Counter()  # nothing bad was accepted
    assert summary.rejected_by_kind.get(RESENT_DUPLICATE, 0) == 0  # no good event refused
    assert dict(summary.rejected_by_kind) == dict(planted)
    share = summary.rejected / (summary.rejected + summary.accepted)
    assert share == pytest.approx(config.bad_rate, rel=0.25)
    assert RejectedEvent.objects.count() == summary.rejected
    assert Event.objects.count() == summary.accepted

    # The rule-only kinds carry the name and id of the default rule that caught them.
    rule_ids = dict(QualityRule.objects.values_list("name", "id"))
    kinds = {
        str(e.payload["event_id"]): e.kind
        for e in gen.sample_events(config)
        if e.kind in RULE_FOR_KIND
    }
    quarantined = RejectedEvent.objects.filter(event_id__in=kinds)
    assert quarantined.count() == len(kinds)
    for row in quarantined:
        expected = RULE_FOR_KIND[kinds[row.event_id]]
        assert rule_ids[expected] in row.rule_ids, (row.event_id, row.reasons)
        assert expected in {reason["rule"] for reason in row.reasons}

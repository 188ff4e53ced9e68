"""The OpenAPI document and the API agree: schemathesis generates valid and invalid requests
for every operation of /api/schema/ and sends them to a live server (pytest-django's
live_server, on PostgreSQL), checking each answer: no 5xx, a documented status code and
content type, a body that matches the documented schema, invalid input refused, valid input
accepted, and the other built-in checks. Bounded: MAX_EXAMPLES per operation and mode.

Hypothesis drives schemathesis' strategies directly (`APIOperation.as_strategy`): its pytest
plugin's lazy loader does not run on this pytest (it sets a node attribute pytest 9.2 dropped).
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ensure_resource_availability,
    ignored_auth,
    missing_required_header,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
    use_after_free,
)

from events import services
from events.models import KeyScope
from tests.helpers import error_pairs

MAX_EXAMPLES = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    missing_required_header,
    unsupported_method,
    use_after_free,
    ensure_resource_availability,
    ignored_auth,
]


# Rules of the validator that JSON Schema cannot state (numbers anywhere inside `properties`,
# its depth and encoded size, a timestamp relative to the time received): a schema-valid event
# may still be rejected for these, and the document's 400 says so. Rules an analyst stores
# (errors with a rule_id) are outside the document by design.
RUNTIME_RULES = {
    ("properties", "range"),
    ("properties", "finite_number"),
    ("properties", "max_depth"),
    ("properties", "max_size"),
    ("properties", "no_nul_bytes"),
    ("timestamp", "not_in_future"),
    ("timestamp", "date_range"),  # sent_at's correction leaves the calendar
}
# The reads' rules between parameters, and the cursor (opaque: only the API makes valid ones).
READ_RUNTIME_RULES = {
    ("until", "after_since"),
    ("received_until", "after_since"),
    ("cursor", "invalid"),
    ("cursor", "filters_mismatch"),
}

# The identify call's traits are bounded like an event's properties; "user_id or anonymous_id"
# is a rule between fields.
IDENTIFY_RUNTIME_RULES = {
    ("traits", "max_depth"),
    ("traits", "max_size"),
    ("traits", "max_keys"),
    ("traits", "no_nul_bytes"),
    ("traits", "json_value"),
    ("user_id", "required"),
}


SEGMENT_CALLS = ("track", "page", "screen", "identify", "group", "alias")
# A Segment single call's message is described, not typed (trackers/segment/openapi.py): one
# that its mapping or validation refuses is quarantined and answered 400 with its reasons, like
# a batch's message. Such a 400 must say so and name the quarantine row that kept it.
QUARANTINED = {("*", "quarantined")}


def runtime_rules(method: str, path: str) -> set[tuple[str, str]] | None:
    """The rules a valid request may still break on this operation, if any."""
    key = (method, path.removeprefix("/api/v1"))
    if key == ("POST", "/events/"):
        return RUNTIME_RULES
    if method == "POST" and path.strip("/") in {f"v1/{call}" for call in SEGMENT_CALLS}:
        return QUARANTINED
    if key == ("POST", "/identify/"):
        return IDENTIFY_RUNTIME_RULES
    if key in {("GET", "/events/"), ("GET", "/events/recent/")}:
        return READ_RUNTIME_RULES
    return None


HEALTH = {"/health/", "/health/live/", "/health/ready/"}
# Operations that take any input: the feature-flag answers read nothing, the Snowplow pixel
# reads any query (an event it cannot use is quarantined, and the pixel still answered).
ANY_INPUT = {("GET", "/flags/"), ("POST", "/flags/"), ("GET", "/decide/"), ("POST", "/decide/")}
ANY_INPUT |= {("GET", "/i")}
OPERATIONS = [
    *(
        (method, prefix + path)
        for prefix in ("", "/api/v1")
        for method, path in (
            ("POST", "/events/"),
            ("GET", "/events/"),
            ("POST", "/events/batch/"),
            ("GET", "/events/stats/"),
            ("GET", "/events/recent/"),
            ("POST", "/identify/"),
            ("POST", "/alias/"),
            *(("GET", path) for path in sorted(HEALTH)),
        )
    ),
    ("POST", "/api/v1/erasure/"),
    ("POST", "/v1/batch/"),
    *(("POST", f"/v1/{call}/") for call in SEGMENT_CALLS),
    # Tracker protocols (trackers app), at the paths their SDKs use
    *(("POST", path) for path in ("/batch/", "/capture/", "/e/", "/i/v0/e/", "/i/v0/ai/batch/")),
    ("POST", "/i/v1/analytics/events"),
    *((method, path) for path in ("/flags/", "/decide/") for method in ("GET", "POST")),
    ("GET", "/array/{token}/config"),
    ("GET", "/array/{token}/config.js"),
    ("GET", "/v1/projects/{token}/settings"),  # analytics.js (ADR 0037)
    ("GET", "/i"),
    ("POST", "/com.snowplowanalytics.snowplow/tp2"),
]


@pytest.fixture
def api_key(transactional_db, require_postgres) -> str:
    # Every scope, so that each operation's valid input is really accepted (erasure: admin).
    scopes = [KeyScope.WRITE, KeyScope.READ, KeyScope.EXPORT, KeyScope.ADMIN]
    return services.ingestion_key_create(name="schemathesis", scopes=scopes).raw_key


# Invalid input may also be refused as too large: a batch over its documented maxItems is a
# 413 (the body limit's answer), which schemathesis does not count as a refusal by default.
REFUSALS = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]
CONFIG = {"checks": {"negative_data_rejection": {"expected-statuses": [*REFUSALS, "5xx"]}}}


@pytest.fixture
def api_schema(live_server, api_key):
    return schemathesis.openapi.from_url(
        f"{live_server.url}/api/schema/", config=schemathesis.Config.from_dict(CONFIG)
    )


def test_every_operation_is_tested(api_schema):
    """A new operation in the document is not silently left out of the test below."""
    documented = {
        (result.ok().method.upper(), result.ok().path) for result in api_schema.get_all_operations()
    }
    assert documented == set(OPERATIONS)


# Every operation with valid input; with invalid input, every operation that takes some (the
# health probes take no parameters, body or credentials: there is nothing to make invalid; nor
# is there for ANY_INPUT).
CASES = [
    (method, path, mode)
    for method, path in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode is GenerationMode.POSITIVE
    or (path.removeprefix("/api/v1") not in HEALTH and (method, path) not in ANY_INPUT)
]


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_api_matches_its_openapi_document(api_schema, api_key, live_server, method, path, mode):
    operation = api_schema.find_operation_by_path(method, path)
    headers = {"Authorization": f"Bearer {api_key}"}
    rules = runtime_rules(method, path) if mode is GenerationMode.POSITIVE else None
    # Valid input is accepted; up to the runtime rules where there are some (checked below).
    checks = CHECKS if rules is not None else [*CHECKS, positive_data_acceptance]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,  # the same cases on every run: a failure is reproducible
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def answers_as_documented(case) -> None:
        response = case.call_and_validate(base_url=live_server.url, headers=headers, checks=checks)
        if rules is QUARANTINED and response.status_code == 400:
            body = response.json()
            kept = body.get("error") == "validation_failed" and body["results"][0]["rejected_id"]
            assert kept or error_pairs(body) <= {("body", "object")}, body
        elif rules is not None and response.status_code == 400:
            body = response.json()
            stored_rule = all("rule_id" in error for error in body["errors"])
            assert stored_rule or error_pairs(body) <= rules, body

    answers_as_documented()

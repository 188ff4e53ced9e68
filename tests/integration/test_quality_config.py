"""`quality_config export|import|diff`: a stable YAML round trip, idempotent import, a bad entry
rejected whole (exit 2, naming rule and field), diff's exit code, rule-set version bumps and
history rows with the import's change reason."""

from __future__ import annotations

import io

import pytest
import yaml
from django.core.management import CommandError, call_command

from quality.models import QualityCheck, QualityRule, RuleSetVersion
from quality.services.config import CHANGE_REASON
from tests.factories import QualityCheckFactory, QualityRuleFactory


def command(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("quality_config", *args, stdout=out)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue()


def version() -> int:
    row = RuleSetVersion.objects.filter(pk=1).first()
    return row.version if row else 0


@pytest.fixture
def stored(require_postgres, db):
    QualityRuleFactory(name="needs-category", field="category", event_types=["product_view"])
    QualityRuleFactory(name="a-price", kind="range", field="price", params={"min": 0, "max": 10})
    QualityCheckFactory(name="fresh", kind="freshness", threshold=15)


@pytest.mark.django_db
def test_export_is_sorted_and_stable_and_round_trips(stored, tmp_path):
    """Rows sorted by name, keys in a fixed order; exporting twice gives the same bytes, and
    importing the export changes nothing (diff exit 0)."""
    path = tmp_path / "quality.yml"
    assert command("export", "--file", str(path))[0] == 0
    text = path.read_text()
    assert command("export")[1] == text
    document = yaml.safe_load(text)
    assert [rule["name"] for rule in document["rules"]] == ["a-price", "needs-category"]
    assert list(document["rules"][0])[:3] == ["name", "description", "enabled"]
    assert document["checks"][0]["threshold"] == 15
    assert command("diff", "--file", str(path)) == (0, "0 rule(s)/check(s) would change.\n")
    before = version()
    assert command("import", "--file", str(path))[0] == 0
    assert (
        version() == before
        and QualityRule.history.filter(history_change_reason=CHANGE_REASON).count() == 0
    )


@pytest.mark.django_db
def test_import_applies_changes_once_with_history_and_a_version_bump(stored, tmp_path):
    path = tmp_path / "quality.yml"
    command("export", "--file", str(path))
    document = yaml.safe_load(path.read_text())
    document["rules"][0]["params"] = {"min": 0, "max": 99}
    document["rules"].append({"name": "new-rule", "kind": "required", "field": "country"})
    document["checks"][0]["threshold"] = 30
    path.write_text(yaml.safe_dump(document, sort_keys=False))

    code, text = command("diff", "--file", str(path))
    assert code == 1
    assert (
        "~ rule a-price (update)" in text
        and "params: {max: 10, min: 0} -> {max: 99, min: 0}" in text
    )
    assert "+ rule new-rule (create)" in text and "threshold: 15.0 -> 30.0" in text
    before = version()
    assert command("import", "--file", str(path))[0] == 0
    assert version() == before + 1
    assert QualityRule.objects.get(name="a-price").params == {"min": 0, "max": 99}
    assert QualityCheck.objects.get(name="fresh").threshold == 30
    reasons = QualityRule.history.filter(history_change_reason=CHANGE_REASON)
    assert sorted(reasons.values_list("name", "history_type")) == [
        ("a-price", "~"),
        ("new-rule", "+"),
    ]
    assert QualityCheck.history.filter(history_change_reason=CHANGE_REASON).count() == 1

    assert command("import", "--file", str(path))[0] == 0  # idempotent
    assert version() == before + 1
    assert QualityRule.history.filter(history_change_reason=CHANGE_REASON).count() == 2
    assert command("diff", "--file", str(path))[0] == 0


@pytest.mark.django_db
def test_a_bad_rule_rejects_the_whole_file(stored, tmp_path):
    """A valid change and an invalid rule in one file: exit 2 naming the rule and the field,
    and the valid change is not applied."""
    path = tmp_path / "quality.yml"
    command("export", "--file", str(path))
    document = yaml.safe_load(path.read_text())
    document["checks"][0]["threshold"] = 99
    document["rules"][1]["kind"] = "range"
    document["rules"][1]["params"] = {"min": "cheap"}
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    before = version()
    with pytest.raises(CommandError, match=r"rule needs-category: field params") as caught:
        call_command("quality_config", "import", "--file", str(path))
    assert caught.value.returncode == 2
    assert QualityCheck.objects.get(name="fresh").threshold == 15
    assert QualityRule.objects.get(name="needs-category").kind == "required"
    assert version() == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    "document, message",
    [
        ("rules: [{name: x, kind: required, field: country, colour: red}]", "rule x: field colour"),
        ("checks: [{name: c, kind: freshness, threshold: high}]", "check c: field threshold"),
        ("rules: [{kind: required}]", "rule #1: field name"),
        ("rules: {name: x}", "rules: must be a list"),
        ("rules: [", "not valid YAML"),
    ],
)
def test_bad_files_exit_2_with_a_message(require_postgres, tmp_path, document, message):
    path = tmp_path / "bad.yml"
    path.write_text(document)
    with pytest.raises(CommandError, match=message) as caught:
        call_command("quality_config", "diff", "--file", str(path))
    assert caught.value.returncode == 2
    assert not QualityRule.objects.exists() and not QualityCheck.objects.exists()


@pytest.mark.django_db
def test_prune_deletes_what_the_file_does_not_list(stored, tmp_path):
    path = tmp_path / "only-fresh.yml"
    path.write_text("checks:\n- name: fresh\n")
    assert command("import", "--file", str(path))[0] == 0
    assert QualityRule.objects.count() == 2
    code, text = command("diff", "--prune", "--file", str(path))
    assert code == 1 and "- rule a-price (delete)" in text
    command("import", "--prune", "--file", str(path))
    assert not QualityRule.objects.exists() and QualityCheck.objects.count() == 1

"""The data-quality GitHub workflow parses, and every `manage.py` command it runs exists with
the options it passes (the workflow itself cannot run here; its commands were run by hand on a
scratch database, see README "Data quality from CI")."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml
from django.core.management import get_commands, load_command_class

WORKFLOW = Path(__file__).resolve().parents[2] / ".github/workflows/data-quality.yml"


def test_workflow_parses_and_runs_known_commands_with_known_options():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    steps = workflow["jobs"]["checks"]["steps"]
    anchor = workflow["jobs"]["checks"]["env"]["ANCHOR"]
    scripts = [
        step["run"].replace("\\\n", " ").replace("$ANCHOR", anchor)
        for step in steps
        if "run" in step
    ]
    calls = [
        shlex.split(match)
        for script in scripts
        for match in re.findall(r"manage\.py ([^|>\n]+)", script)
    ]
    assert [call[0] for call in calls] == [
        "migrate",
        "generate_sample_data",
        "load_default_rules",
        "quality_config",
        "run_quality_checks",
        "run_quality_checks",
    ]
    commands = get_commands()
    for name, *args in calls:
        parser = load_command_class(commands[name], name).create_parser("manage.py", name)
        parser.parse_args(args)  # exits (fails the test) on an unknown option
    gate = next(call for call in calls if call[0] == "run_quality_checks")
    assert {"--json", "--no-incidents", "--now"} <= set(gate)

"""The generated rollback state machine: deploy, wait for the endpoint over data, smoke-test, revert on
failure, every path recorded."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from chalicelib.models.planfile import load_plan_text
from chalicelib.workflows.rollback import ROLLBACK_TASKS, build_rollback

PLANS = Path(__file__).resolve().parents[2] / "plans"
EXAMPLE = (PLANS / "fraud-scoring.yaml").read_text()


def definition(text: str = EXAMPLE) -> dict[str, Any] | None:
    return build_rollback(load_plan_text(text), lambda fn: f"arn:fn:{fn}")


def test_the_wait_for_the_endpoint_is_data_driven_and_failed_smoke_tests_revert() -> None:
    d = definition((PLANS / "fraud-scoring-sagemaker.yaml").read_text())
    assert d is not None
    states = d["States"]
    # Then the only wait is as long as the last look at the endpoint asked, looping back to the choice
    waits = [st for st in states.values() if st["Type"] == "Wait"]
    assert waits == [states["WaitSettle"]] and waits[0]["SecondsPath"] == "$.progress.wait_seconds"
    assert states["WaitSettle"]["Next"] == "CheckSettled" and states["CheckSettled"]["Next"] == "Settled"
    # And a settled deployment is smoke-tested, a settled revert recorded
    settled = states["Settled"]["Choices"]
    assert settled[0]["Next"] == "SmokeTest" and settled[1]["Next"] == "RecordRollback"
    assert states["Settled"]["Default"] == "WaitSettle"
    assert states["Passed"]["Choices"] == [
        {"Variable": "$.progress.phase", "StringEquals": "revert", "Next": "Revert"}
    ]
    assert states["Revert"]["Next"] == "Settled"
    # And a dry run goes straight to the record; only a rolled-back (or planned) report succeeds
    assert states["DryRun"]["Choices"][0]["Next"] == "RecordRollback"
    assert {c["StringEquals"]: c["Next"] for c in states["Outcome"]["Choices"]} == {
        "rolled-back": "RolledBack",
        "planned": "RolledBack",
    }


def test_every_task_is_bounded_retried_and_caught_into_the_record() -> None:
    d = definition()
    assert d is not None
    tasks = {name: st for name, st in d["States"].items() if st["Type"] == "Task"}
    assert {st["Resource"].rsplit(":", 1)[-1] for st in tasks.values()} == set(ROLLBACK_TASKS)
    for name, st in tasks.items():
        assert "TransientError" in st["Retry"][-1]["ErrorEquals"] and st["TimeoutSeconds"] > 0, name
        expected = "NotRecorded" if name == "RecordRollback" else "RecordRollback"
        assert st["Catch"][-1] == {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": expected}
    assert "QueryLanguage" not in json.dumps(d)


def test_a_plan_without_a_model_registry_gets_no_rollback_machine() -> None:
    text = re.sub(r"  - name: fraud-model\n(    .*\n)+", "", EXAMPLE)
    assert "model-registry" not in [a.kind for a in load_plan_text(text).assets]
    assert definition(text) is None


def test_the_task_functions_exist_in_the_app() -> None:
    import app

    assert set(ROLLBACK_TASKS) <= {f.name for f in app.app.pure_lambda_functions}

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
        expected = CATCHES.get(name, "RecordRollback")
        assert st["Catch"][-1] == {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": expected}
    assert "QueryLanguage" not in json.dumps(d)


# The record's own failure still releases the lock; a failed release goes on to the outcome.
CATCHES = {
    "RecordRollback": "ReleaseUnrecorded",
    "ReleaseLock": "Outcome",
    "ReleaseUnrecorded": "NotRecorded",
}


def paths(states: dict[str, Any], start: str, seen: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every path from `start` to an end state (loops cut at their second visit), Catch targets included."""
    path = (*seen, start)
    st = states[start]
    if st["Type"] in ("Succeed", "Fail"):
        return [path]
    nexts = {st.get("Next"), st.get("Default")} | {c["Next"] for c in st.get("Choices", [])}
    nexts |= {c["Next"] for c in st.get("Catch", [])}
    return [p for n in sorted(nexts - {None}) if n not in seen for p in paths(states, n, path)]


def test_a_rollback_takes_the_workload_lock_first_and_every_way_out_releases_it() -> None:
    d = definition((PLANS / "fraud-scoring-sagemaker.yaml").read_text())
    assert d is not None
    states = d["States"]
    # Then a rollback takes the lock before it reads anything; a dry run takes none
    assert states["Begin"]["Next"] == "Locked" and states["Locked"]["Default"] == "AcquireLock"
    assert states["Locked"]["Choices"][0] == {
        "Variable": "$.request.dry_run",
        "BooleanEquals": True,
        "Next": "PlanRollback",
    }
    assert states["AcquireLock"]["Parameters"]["operation"] == "rollback"
    assert states["AcquireLock"]["Next"] == "PlanRollback"
    # And every step carries the execution, which renews the lock
    for name in ("Deploy", "CheckSettled", "SmokeTest", "Revert"):
        assert states[name]["Parameters"]["execution.$"] == "$$.Execution.Id", name
    # And every path from the lock to an end passes a release (refusal, failure, revert, success)
    found = paths(states, "AcquireLock")
    assert found and all({"ReleaseLock", "ReleaseUnrecorded"} & set(p) for p in found)
    assert {p[-1] for p in found} == {"RolledBack", "RollbackFailed", "NotRecorded"}


def test_a_plan_without_a_model_registry_gets_no_rollback_machine() -> None:
    text = re.sub(r"  - name: fraud-model\n(    .*\n)+", "", EXAMPLE)
    assert "model-registry" not in [a.kind for a in load_plan_text(text).assets]
    assert definition(text) is None


def test_the_task_functions_exist_in_the_app() -> None:
    import app

    assert set(ROLLBACK_TASKS) <= {f.name for f in app.app.pure_lambda_functions}

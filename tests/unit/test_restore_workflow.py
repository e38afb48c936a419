"""The generated restore state machine: a loop of time-bounded batches over data, every path recorded."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from chalicelib.models.planfile import load_plan_text
from chalicelib.workflows.restore import RESTORE_TASKS, build_restore

EXAMPLE = (Path(__file__).resolve().parents[2] / "plans" / "fraud-scoring.yaml").read_text()


def definition(text: str = EXAMPLE) -> dict[str, Any] | None:
    return build_restore(load_plan_text(text), lambda fn: f"arn:fn:{fn}")


def test_batches_loop_over_data_until_the_listing_ends_then_the_run_is_recorded() -> None:
    d = definition()
    assert d is not None
    states = d["States"]
    # Then each batch carries its totals forward and the choice loops on them, no Wait and no Map
    assert states["RestoreBatch"]["ResultPath"] == "$.progress"
    assert states["RestoreBatch"]["Parameters"]["progress.$"] == "$.progress"
    assert states["MoreKeys"]["Choices"] == [
        {"Variable": "$.progress.done", "BooleanEquals": False, "Next": "RestoreBatch"}
    ]
    assert states["MoreKeys"]["Default"] == "RecordRestore"
    assert states["Begin"]["Parameters"]["progress"] == {"done": False}
    # And only a restored (or planned) report ends in success
    assert {c["StringEquals"]: c["Next"] for c in states["Outcome"]["Choices"]} == {
        "restored": "Restored",
        "planned": "Restored",
    }
    assert states["Outcome"]["Default"] == "RestoreFailed"


def test_every_task_is_bounded_retried_and_caught_into_the_record() -> None:
    d = definition()
    assert d is not None
    tasks = {name: st for name, st in d["States"].items() if st["Type"] == "Task"}
    assert {st["Resource"].rsplit(":", 1)[-1] for st in tasks.values()} == set(RESTORE_TASKS)
    for name, st in tasks.items():
        assert "TransientError" in st["Retry"][-1]["ErrorEquals"] and st["TimeoutSeconds"] > 0, name
        assert st["Catch"][-1]["ErrorEquals"] == ["States.ALL"], name
    assert tasks["PlanRestore"]["Catch"][-1]["Next"] == "RecordRestore"
    assert tasks["RestoreBatch"]["Catch"][-1]["Next"] == "RecordRestore"
    assert tasks["RecordRestore"]["Catch"][-1]["Next"] == "NotRecorded"
    assert "QueryLanguage" not in json.dumps(d)


def test_a_plan_without_s3_assets_gets_no_restore_machine() -> None:
    # Given the example plan with its S3 assets removed (the registry and the table stay)
    text = re.sub(r"  - name: (training-data|model-artifacts)\n(    .*\n)+", "", EXAMPLE)
    plan = load_plan_text(text)
    assert [a.kind for a in plan.assets] == ["model-registry", "dynamodb"]
    assert definition(text) is None


def test_the_task_functions_exist_in_the_app() -> None:
    import app

    assert set(RESTORE_TASKS) <= {f.name for f in app.app.pure_lambda_functions}

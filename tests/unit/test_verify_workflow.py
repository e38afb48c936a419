"""The generated verification state machine: a Distributed Map over shards, every path ending in a report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chalicelib.models.planfile import load_plan_text
from chalicelib.workflows.verify import VERIFY_TASKS, build_verification

EXAMPLE = (Path(__file__).resolve().parents[2] / "plans" / "fraud-scoring.yaml").read_text()


def definition() -> dict[str, Any]:
    return build_verification(load_plan_text(EXAMPLE), lambda fn: f"arn:fn:{fn}")


def tasks(states: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for name, st in states.items():
        if st["Type"] == "Task":
            out.append((name, st))
        if st["Type"] == "Map":
            out += tasks(st["ItemProcessor"]["States"])
    return out


def test_the_fan_out_is_a_distributed_map_reading_its_shards_from_s3() -> None:
    # Given the generated machine
    fan_out = definition()["States"]["FanOut"]
    # Then the map runs child executions (STANDARD) and reads its items with an S3 ItemReader
    assert fan_out["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    assert fan_out["ItemReader"]["Resource"] == "arn:aws:states:::s3:getObject"
    assert fan_out["ItemReader"]["ReaderConfig"] == {"InputType": "JSON"}
    # And shard results stay out of the state (stored in S3), so no payload limit is ever hit
    assert fan_out["ResultPath"] is None
    assert 1 < fan_out["MaxConcurrency"] <= 1000


def test_every_task_retries_transient_errors_and_every_failure_still_ends_in_a_report() -> None:
    d = definition()
    states = d["States"]
    for name, st in tasks(states):
        retry = st["Retry"][-1]
        assert "TransientError" in retry["ErrorEquals"] and retry["BackoffRate"] > 1, name
        assert st["Catch"][0]["ErrorEquals"] == ["States.ALL"], name
    # A failed shard is caught inside the map, so the other shards still run
    shard = states["FanOut"]["ItemProcessor"]["States"]["VerifyShard"]
    assert shard["Catch"][0]["Next"] == "ShardFailed"
    # Planning and the map itself fall through to Finalize, which writes the (incomplete) report
    assert states["PlanRun"]["Catch"][0]["Next"] == "Finalize"
    assert states["FanOut"]["Catch"][0]["Next"] == "Finalize"
    assert {fn.rsplit(":", 1)[-1] for _, st in tasks(states) for fn in [st["Resource"]]} == set(VERIFY_TASKS)


def test_jsonpath_only_and_the_run_is_named_by_the_execution() -> None:
    d = definition()
    assert "QueryLanguage" not in json.dumps(d)
    assert d["States"]["PlanRun"]["Parameters"]["run_id.$"] == "$$.Execution.Name"
    assert d["States"]["Finalize"]["Parameters"]["run_id.$"] == "$$.Execution.Name"
    assert d["TimeoutSeconds"] > 0


def test_the_task_functions_exist_in_the_app() -> None:
    import app

    names = {f.name for f in app.app.pure_lambda_functions}
    assert set(VERIFY_TASKS) <= names
    sources = {s.name: s for s in app.app.event_sources}
    assert sources["on_replication_event"].queue == "lifeboat-dev-replication-events"
    assert sources["on_replication_event"].batch_size > 1
    assert "verify_scheduled" in sources

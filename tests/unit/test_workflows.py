"""The generated failover state machine: shape rules that hold for every plan variant."""

from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib.models.planfile import load_plan_text
from chalicelib.workflows.failover import build_failover

EXAMPLE = (Path(__file__).resolve().parents[2] / "plans" / "fraud-scoring.yaml").read_text()


def variant(sustain: str, probe: str) -> str:
    text = EXAMPLE.replace("sustain: 20s", f"sustain: {sustain}")
    return text.replace("confirmation_probe: true", f"confirmation_probe: {probe}")


def reachable(definition: dict) -> set[str]:
    states = definition["States"]
    seen, todo = set(), [definition["StartAt"]]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        st = states[name]
        nxt = [st.get("Next"), st.get("Default")]
        nxt += [c["Next"] for c in st.get("Choices", [])] + [c["Next"] for c in st.get("Catch", [])]
        todo += [n for n in nxt if n]
    return seen


@pytest.mark.parametrize("sustain", ["0s", "20s"])
@pytest.mark.parametrize("probe", ["true", "false"])
def test_every_state_is_reachable_and_every_target_exists(sustain: str, probe: str) -> None:
    # Given a plan variant / When its failover machine is built
    definition = build_failover(load_plan_text(variant(sustain, probe)), lambda fn: f"arn:fn:{fn}")
    states = definition["States"]
    # Then no state is unreachable (Step Functions rejects those) and every transition has a target
    assert reachable(definition) == set(states)
    for name, st in states.items():
        for target in [st.get("Next"), st.get("Default"), *[c["Next"] for c in st.get("Choices", [])]]:
            assert target is None or target in states, (name, target)
    # And the sustain wait exists exactly when the plan has a sustain window
    assert ("WaitSustain" in states) is (sustain != "0s")
    assert ("ConfirmOutage" in states) is (probe == "true")


def test_every_task_retries_transient_errors_with_backoff() -> None:
    definition = build_failover(load_plan_text(EXAMPLE), lambda fn: f"arn:fn:{fn}")
    for name, st in definition["States"].items():
        if st["Type"] == "Task":
            retry = st["Retry"][-1]
            assert "TransientError" in retry["ErrorEquals"] and retry["BackoffRate"] > 1, name

"""Alarm state change -> trigger decision -> (maybe) a failover execution. Every decision is recorded."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, ValidationError

from chalicelib.domain import triggers
from chalicelib.domain.triggers import TriggerDecision
from chalicelib.models.alarms import AlarmStateChange
from chalicelib.models.failover import FailoverRequest, TriggerInfo
from chalicelib.observability import emit, logger
from chalicelib.services.deps import Deps
from chalicelib.services.reach import read_trigger_alarms


class AlarmOutcome(BaseModel):
    """What the alarm handler did with one event."""

    event_id: str | None = Field(None, description="EventBridge event id, when the event had one.")
    rejected: str | None = Field(None, description="Why the event was rejected as malformed, if it was.")
    decisions: list[TriggerDecision] = Field(default_factory=list)
    executions: dict[str, str] = Field(default_factory=dict, description="workload -> execution ARN started.")


def _summarise(err: ValidationError) -> str:
    parts = []
    for e in err.errors()[:5]:
        loc = ".".join(str(p) for p in e["loc"]) or "event"
        parts.append(f"{loc}: {e['msg']}")
    return "; ".join(parts)


def parse(raw: Any) -> AlarmStateChange | str:
    """The typed event, or the reason it is not a usable alarm state change."""
    if not isinstance(raw, dict):
        return f"event is a {type(raw).__name__}, not a JSON object"
    try:
        return AlarmStateChange.model_validate(raw)
    except ValidationError as err:
        return _summarise(err)


def decide_and_act(change: AlarmStateChange, d: Deps) -> AlarmOutcome:
    outcome = AlarmOutcome(event_id=change.id)
    alarm = change.detail.alarm_name
    # An alarm is its name in its region: another region's alarm of the same name is not the plan's.
    plans = [p for p in d.plans.all() if alarm in p.trigger.alarms and p.alarm_region(alarm) == change.region]
    if not plans:
        logger.info("alarm names no plan; ignored", alarm=alarm, region=change.region)
        emit("AlarmIgnored", 1)
        return outcome
    for plan in plans:
        now = d.clock()
        seen = read_trigger_alarms(plan, d, change)
        state = d.ledger.get_state(plan.workload)
        decision = triggers.evaluate(change, plan, seen.snapshots, state, now, unreachable=seen.unreachable)
        outcome.decisions.append(decision)
        logger.info(
            "trigger decision",
            workload=plan.workload,
            alarm=alarm,
            action=decision.action,
            reason=decision.reason,
        )
        emit(f"Trigger{decision.action.capitalize()}", 1, workload=plan.workload)
        execution = None
        if decision.action == "start":
            assert decision.execution_name and decision.sustain_until and decision.quorum.quorum_since
            request = FailoverRequest(
                workload=plan.workload,
                mode=plan.failover.mode,
                reason=decision.reason,
                trigger=TriggerInfo(
                    alarm=alarm,
                    first_alarm_at=decision.quorum.first_alarm_at or decision.quorum.quorum_since,
                    quorum_since=decision.quorum.quorum_since,
                    sustain_until=decision.sustain_until,
                    event_id=change.id,
                ),
            )
            # The name and input derive from the quorum, not the event, and one claim per execution name
            # decides which of any number of concurrent deliveries starts it and records the decision.
            if not d.ledger.claim(plan.workload, decision.execution_name):
                logger.info(
                    "quorum already acted on", workload=plan.workload, execution_name=decision.execution_name
                )
                continue
            payload = request.model_dump(mode="json", exclude={"trigger": {"event_id", "alarm"}})
            try:
                execution, _ = d.executions.start(plan.workload, "failover", decision.execution_name, payload)
            except Exception:
                d.ledger.release_claim(plan.workload, decision.execution_name)  # let the retry start it
                raise
            outcome.executions[plan.workload] = execution
            d.ledger.update_state(plan.workload, current=state, pending_execution=execution)
        elif decision.action == "cancel" and state.pending_execution:
            execution = state.pending_execution
            # The cancel decision recorded below is this run's conclusion (it holds no lock while it
            # waits): the janitor, told of the stop, only checks that nothing is left behind.
            d.ledger.mark_concluded(plan.workload, execution, "trigger")
            d.executions.stop(execution, decision.reason)
            d.ledger.update_state(plan.workload, current=state, pending_execution=None)
        if decision.action != "ignore":
            d.ledger.record(
                plan.workload,
                "decision",
                {"start": "started", "suppress": "suppressed", "cancel": "cancelled"}[decision.action],
                decision.reason,
                execution=execution,
                detail={
                    "alarm": alarm,
                    "event_id": change.id,
                    "quorum": decision.quorum.model_dump(mode="json"),
                },
            )
    return outcome


def _handle(event: dict[str, Any], d: Deps) -> dict[str, Any]:
    return decide_and_act(AlarmStateChange.model_validate(event), d).model_dump(mode="json")


def on_alarm_event(raw: Any, d: Deps, *, idempotency_table: str | None, context: Any = None) -> AlarmOutcome:
    """Entry point for the EventBridge handler: never raises on bad input, never acts twice on one event."""
    parsed = parse(raw)
    if isinstance(parsed, str):
        logger.warning("rejected alarm event", reason=parsed)
        emit("RejectedEvents", 1)
        event_id = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else None
        return AlarmOutcome(event_id=event_id, rejected=parsed[:1000])
    if idempotency_table is None:
        return decide_and_act(parsed, d)
    # Keyed on the event id, records in the idempotency table for 24 hours.
    process = d.idempotency.guard(idempotency_table, "alarm", _handle)
    if context is not None:
        process.register_lambda_context(context)
    return AlarmOutcome.model_validate(process(event=raw, d=d))

"""Alarm state change -> trigger decision -> (maybe) a failover execution. Every decision is recorded.

Two entries, one policy: `on_alarm_event` (EventBridge's "CloudWatch Alarm State Change") and
`on_alarm_action` (an alarm invoking the function directly as its action; its payload becomes the same
state change). Neither raises on bad input: an event over EventBridge's size limit is refused before it is
parsed, a malformed one is rejected with the reason, a copy of an event another invocation is handling is
answered "duplicate, in progress".
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, ValidationError

from chalicelib.adapters.idempotency import InProgress
from chalicelib.domain import triggers
from chalicelib.domain.triggers import TriggerDecision
from chalicelib.invariants import present
from chalicelib.models.alarms import AlarmActionPayload, AlarmStateChange
from chalicelib.models.envelope import MAX_EVENT_BYTES, json_size_over
from chalicelib.models.failover import FailoverRequest, TriggerInfo
from chalicelib.observability import emit, logger
from chalicelib.services.deps import Deps
from chalicelib.services.reach import read_trigger_alarms


class AlarmOutcome(BaseModel):
    """What the alarm handler did with one event."""

    event_id: str | None = Field(
        None, description="EventBridge event id (derived for an alarm action's payload), when there is one."
    )
    rejected: str | None = Field(None, description="Why the event was rejected as malformed, if it was.")
    duplicate: str | None = Field(
        None, description="Set when another invocation is handling this same event right now."
    )
    decisions: list[TriggerDecision] = Field(default_factory=list)
    executions: dict[str, str] = Field(default_factory=dict, description="workload -> execution ARN started.")


def _summarise(err: ValidationError) -> str:
    parts = []
    for e in err.errors()[:5]:
        loc = ".".join(str(p) for p in e["loc"]) or "event"
        parts.append(f"{loc}: {e['msg']}")
    return "; ".join(parts)


def _too_large(raw: Any) -> str | None:
    counted = json_size_over(raw, MAX_EVENT_BYTES)
    if counted is None:
        return None
    return f"event larger than {MAX_EVENT_BYTES} bytes (EventBridge's limit): not parsed"


def parse(raw: Any) -> AlarmStateChange | str:
    """The typed event, or the reason it is not a usable alarm state change."""
    if not isinstance(raw, dict):
        return f"event is a {type(raw).__name__}, not a JSON object"
    too_large = _too_large(raw)
    if too_large is not None:
        return too_large
    try:
        return AlarmStateChange.model_validate(raw)
    except ValidationError as err:
        return _summarise(err)


def parse_action(raw: Any) -> dict[str, Any] | str:
    """An alarm action's payload as the EventBridge state change it stands for, or why it is not one."""
    if not isinstance(raw, dict):
        return f"payload is a {type(raw).__name__}, not a JSON object"
    too_large = _too_large(raw)
    if too_large is not None:
        return too_large
    if "detail-type" in raw:
        return "an EventBridge event, not an alarm action's payload (its rule targets on_alarm)"
    try:
        return AlarmActionPayload.model_validate(raw).to_state_change()
    except ValidationError as err:
        return _summarise(err)


def _rejected(raw: Any, reason: str, entry: str) -> AlarmOutcome:
    # One short line: the reason is bounded, the event itself never logged (it may be 256 KB of anything).
    logger.warning("rejected alarm event", entry=entry, reason=reason[:300])
    emit("RejectedEvents", 1)
    event_id = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else None
    return AlarmOutcome(event_id=event_id[:128] if event_id else None, rejected=reason[:1000])


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
            name = present(decision.execution_name, "the execution name of a start decision")
            quorum_since = present(decision.quorum.quorum_since, "the quorum time of a start decision")
            request = FailoverRequest(
                workload=plan.workload,
                mode=plan.failover.mode,
                reason=decision.reason,
                trigger=TriggerInfo(
                    alarm=alarm,
                    first_alarm_at=decision.quorum.first_alarm_at or quorum_since,
                    quorum_since=quorum_since,
                    sustain_until=present(decision.sustain_until, "the sustain end of a start decision"),
                    event_id=change.id,
                ),
            )
            # The name and input derive from the quorum, not the event, and one claim per execution name
            # decides which of any number of concurrent deliveries starts it and records the decision.
            if not d.ledger.claim(plan.workload, name):
                logger.info("quorum already acted on", workload=plan.workload, execution_name=name)
                continue
            payload = request.model_dump(mode="json", exclude={"trigger": {"event_id", "alarm"}})
            try:
                execution, _ = d.executions.start(plan.workload, "failover", name, payload)
            except Exception:
                d.ledger.release_claim(plan.workload, name)  # let the retry start it
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
                _RECORDED[decision.action],
                decision.reason,
                execution=execution,
                detail={
                    "alarm": alarm,
                    "event_id": change.id,
                    "quorum": decision.quorum.model_dump(mode="json"),
                    **({"mute": change.detail.mute.model_dump(mode="json")} if change.detail.mute else {}),
                },
            )
    return outcome


_RECORDED = {"start": "started", "suppress": "suppressed", "mute": "muted", "cancel": "cancelled"}
"""The ledger outcome of each decision that is recorded (ignore is not)."""


def _handle(event: dict[str, Any], d: Deps) -> dict[str, Any]:
    return decide_and_act(AlarmStateChange.model_validate(event), d).model_dump(mode="json")


def on_alarm_event(raw: Any, d: Deps, *, idempotency_table: str | None, context: Any = None) -> AlarmOutcome:
    """Entry point for the EventBridge handler: never raises on bad input, never acts twice on one event."""
    parsed = parse(raw)
    if isinstance(parsed, str):
        return _rejected(raw, parsed, "eventbridge")
    return _once(parsed, raw, d, idempotency_table=idempotency_table, context=context)


def on_alarm_action(raw: Any, d: Deps, *, idempotency_table: str | None, context: Any = None) -> AlarmOutcome:
    """Entry point for an alarm's Lambda action: the payload becomes the state change it reports and goes
    through the same policy, once per state change (CloudWatch and Lambda retry asynchronous invocations)."""
    event = parse_action(raw)
    if isinstance(event, str):
        return _rejected(raw, event, "alarm-action")
    parsed = parse(event)
    if isinstance(parsed, str):
        return _rejected(event, parsed, "alarm-action")
    return _once(parsed, event, d, idempotency_table=idempotency_table, context=context)


def _once(
    change: AlarmStateChange, event: dict[str, Any], d: Deps, *, idempotency_table: str | None, context: Any
) -> AlarmOutcome:
    if idempotency_table is None:
        return decide_and_act(change, d)
    # Keyed on the event id, records in the idempotency table for 24 hours.
    process = d.idempotency.guard(idempotency_table, "alarm", _handle)
    if context is not None:
        process.register_lambda_context(context)
    try:
        return AlarmOutcome.model_validate(process(event=event, d=d))
    except InProgress:
        logger.info("duplicate alarm event, in progress elsewhere", event_id=change.id)
        emit("AlarmDuplicateInProgress", 1)
        return AlarmOutcome(
            event_id=change.id, duplicate="duplicate, in progress: another invocation is handling this event"
        )

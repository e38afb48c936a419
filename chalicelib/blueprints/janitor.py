"""EventBridge: an execution that ended without concluding gets its lock and workload state cleaned up."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

bp = Blueprint(__name__)

# Every end of an execution: ABORTED, TIMED_OUT and FAILED can skip its own Conclude/ReleaseLock, and a
# SUCCEEDED one may still hold its lock (its ReleaseLock failed; the Catch goes on to the outcome). The
# packaged rule is further limited to this region's failover and failback machines (infra/template.py).
EXECUTION_ENDED = {
    "source": ["aws.states"],
    "detail-type": ["Step Functions Execution Status Change"],
    "detail": {"status": ["SUCCEEDED", "ABORTED", "TIMED_OUT", "FAILED"]},
}


@bp.on_cw_event(EXECUTION_ENDED, name="on_execution_end")
def on_execution_end(event: Any) -> dict[str, Any]:
    from chalicelib.models.stepfunctions import ExecutionStatusChange
    from chalicelib.services.deps import deps
    from chalicelib.services.janitor import tidy_up

    change = ExecutionStatusChange.model_validate(event.to_dict())
    return tidy_up(change, deps()).model_dump(mode="json")

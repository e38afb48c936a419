"""The DynamoDB ledger: every decision Lifeboat takes, and each workload's current state.

The ledger table is the audit trail: its items are only ever written (entries once, conditionally; the state
and asset items replaced by versioned writes), never deleted, and no role may delete them (infra/
permissions.py grants no DeleteItem on it). The items Lifeboat does delete, one-time claims (with a TTL)
and operator control items (deleted when their run ends), live in the lock table beside the leases
(`claim#<workload>#<key>`, `control#<workload>#<key>`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from chalicelib.adapters import aws
from chalicelib.adapters.dynamo import error_code, from_item, to_item
from chalicelib.clock import Clock, parse_timestamp, utc_now
from chalicelib.models.ledger import EntryKind, LedgerEntry, WorkloadState

STATE_SK = "state"
ENTRY_PREFIX = "entry#"
CONCLUDED_PREFIX = "concluded#"
# Partition keys of the lock table's coordination items (locks are lock#<workload>: adapters/locks.py).
CLAIM_PREFIX = "claim#"
CONTROL_PREFIX = "control#"
TTL_ATTRIBUTE = "expiration"
_MAX_STATE_RETRIES = 5


class StateConflict(RuntimeError):
    """The workload state changed under us too many times in a row."""


def _pk(workload: str) -> str:
    return f"workload#{workload}"


def _claim_key(workload: str, key: str) -> dict[str, Any]:
    return {"pk": {"S": f"{CLAIM_PREFIX}{workload}#{key}"}}


def _control_key(workload: str, key: str) -> dict[str, Any]:
    return {"pk": {"S": f"{CONTROL_PREFIX}{workload}#{key}"}}


class Ledger:
    """Append-only decision log plus a versioned state record per workload (the ledger table), and the
    claims and control items that coordinate operations (the lock table, `control_table`)."""

    ddb = aws.Client("dynamodb")

    def __init__(
        self,
        table_name: str,
        dynamodb: Any | None = None,
        *,
        clock: Clock = utc_now,
        control_table: str | None = None,
    ) -> None:
        self.table_name = table_name
        self.control_table_name = control_table
        self.ddb = dynamodb
        self._clock = clock

    @property
    def control_table(self) -> str:
        if self.control_table_name is None:
            raise RuntimeError(
                "this Ledger has no control_table: claims and control items live in the lock table, "
                "never in the append-only ledger table"
            )
        return self.control_table_name

    # -- entries ---------------------------------------------------------------------------------
    def record(
        self,
        workload: str,
        kind: EntryKind,
        outcome: str,
        reason: str,
        *,
        actor: str = "lifeboat",
        execution: str | None = None,
        detail: dict[str, Any] | None = None,
        at: datetime | None = None,
    ) -> LedgerEntry:
        when = at or self._clock()
        entry = LedgerEntry(
            workload=workload,
            at=when,
            kind=kind,
            outcome=outcome,
            reason=reason,
            actor=actor,
            execution=execution,
            detail=detail or {},
            entry_id=uuid.uuid4().hex[:12],
        )
        self.ddb.put_item(
            TableName=self.table_name,
            Item=to_item(
                {
                    "pk": _pk(workload),
                    "sk": f"{ENTRY_PREFIX}{when.isoformat()}#{entry.entry_id}",
                    "kind": kind,
                    "outcome": outcome,
                    "reason": reason,
                    "actor": actor,
                    "execution": execution,
                    "detail": json.dumps(entry.detail, default=str, sort_keys=True),
                    "at": when.isoformat(),
                }
            ),
            # Append-only: an entry is never replaced, not even by a retry that reused its id.
            ConditionExpression="attribute_not_exists(pk)",
        )
        return entry

    def entries(self, workload: str, *, limit: int = 50, kind: EntryKind | None = None) -> list[LedgerEntry]:
        """Newest first."""
        out: list[LedgerEntry] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": {"S": _pk(workload)}, ":prefix": {"S": ENTRY_PREFIX}},
            "ScanIndexForward": False,
        }
        while len(out) < limit:
            page = self.ddb.query(**kwargs)
            for raw in page.get("Items", []):
                item = from_item(raw)
                if kind is not None and item.get("kind") != kind:
                    continue
                out.append(
                    LedgerEntry(
                        workload=workload,
                        at=parse_timestamp(item["at"]),
                        kind=item["kind"],
                        outcome=item["outcome"],
                        reason=item["reason"],
                        actor=item.get("actor", "lifeboat"),
                        execution=item.get("execution"),
                        detail=json.loads(item.get("detail") or "{}"),
                        entry_id=item["sk"].rsplit("#", 1)[-1],
                    )
                )
                if len(out) >= limit:
                    break
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return out

    def claim(self, workload: str, key: str, *, ttl_days: int = 90) -> bool:
        """Take a one-time claim (e.g. "start execution X"); False when someone already has it.

        Concurrent deliveries of different events describing the same quorum race here, and exactly one
        of them goes on to start the execution and record the decision.
        """
        expires = int((self._clock() + timedelta(days=ttl_days)).timestamp())
        try:
            self.ddb.put_item(
                TableName=self.control_table,
                Item={**_claim_key(workload, key), TTL_ATTRIBUTE: {"N": str(expires)}},
                ConditionExpression="attribute_not_exists(pk)",
            )
        except Exception as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def release_claim(self, workload: str, key: str) -> None:
        """Give a claim back (the claimed action failed, so a retry must be able to take it)."""
        self.ddb.delete_item(TableName=self.control_table, Key=_claim_key(workload, key))

    # -- conclusions (who concluded an execution: sort key concluded#<execution arn>) -----------------
    def mark_concluded(self, workload: str, execution: str, by: str, *, ttl_days: int = 90) -> bool:
        """Say who concludes `execution` (records its outcome and notifies); False when someone already did.

        The execution's own Conclude task, an operator's abort, a drill's cleanup, the trigger cancelling a
        pending failover and the janitor all mark it, so the janitor never records a second outcome.
        """
        expires = int((self._clock() + timedelta(days=ttl_days)).timestamp())
        try:
            self.ddb.put_item(
                TableName=self.table_name,
                Item=to_item(
                    {
                        "pk": _pk(workload),
                        "sk": f"{CONCLUDED_PREFIX}{execution}",
                        "by": by,
                        "at": self._clock().isoformat(),
                        "expiration": expires,
                    }
                ),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except Exception as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def concluded_by(self, workload: str, execution: str) -> str | None:
        """Who marked `execution` concluded (execution, operator, drill, trigger, janitor), or None."""
        resp = self.ddb.get_item(
            TableName=self.table_name,
            Key={"pk": {"S": _pk(workload)}, "sk": {"S": f"{CONCLUDED_PREFIX}{execution}"}},
            ConsistentRead=True,
        )
        if "Item" not in resp:
            return None
        return str(from_item(resp["Item"]).get("by", "unknown"))

    # -- state -----------------------------------------------------------------------------------
    def get_state(self, workload: str) -> WorkloadState:
        resp = self.ddb.get_item(
            TableName=self.table_name,
            Key={"pk": {"S": _pk(workload)}, "sk": {"S": STATE_SK}},
            ConsistentRead=True,
        )
        if "Item" not in resp:
            return WorkloadState(workload=workload)
        item = from_item(resp["Item"])
        return WorkloadState.model_validate_json(item["state"])

    def update_state(
        self,
        workload: str,
        *,
        current: WorkloadState | None = None,
        mutate: Callable[[WorkloadState], dict[str, Any]] | None = None,
        **changes: Any,
    ) -> WorkloadState:
        """Apply changes with optimistic concurrency (two Lifeboat copies may write at once).

        `current`: the state the caller just read (saves a read; re-read on conflict). `mutate`: changes that
        depend on the current state (e.g. one entry of a dict), recomputed on every attempt.
        """
        for attempt in range(_MAX_STATE_RETRIES):
            if current is None or attempt > 0:
                current = self.get_state(workload)
            delta = {**changes, **(mutate(current) if mutate is not None else {})}
            updated = current.model_copy(update={**delta, "version": current.version + 1})
            condition = "attribute_not_exists(pk)" if current.version == 0 else "version = :v"
            kwargs: dict[str, Any] = {
                "TableName": self.table_name,
                "Item": to_item(
                    {
                        "pk": _pk(workload),
                        "sk": STATE_SK,
                        "version": updated.version,
                        "state": updated.model_dump_json(),
                    }
                ),
                "ConditionExpression": condition,
            }
            if current.version:
                kwargs["ExpressionAttributeValues"] = {":v": {"N": str(current.version)}}
            try:
                self.ddb.put_item(**kwargs)
                return updated
            except Exception as exc:  # botocore ClientError; the adapter must not leak boto types upward
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise
        raise StateConflict(f"state of {workload} kept changing; gave up after {_MAX_STATE_RETRIES} tries")

    # -- control records (operator flags, pending task tokens: lock table, control#<workload>#<key>) -------
    def get_control(self, workload: str, key: str) -> dict[str, Any] | None:
        resp = self.ddb.get_item(
            TableName=self.control_table, Key=_control_key(workload, key), ConsistentRead=True
        )
        if "Item" not in resp:
            return None
        return dict(json.loads(from_item(resp["Item"])["data"]))

    def update_control(
        self, workload: str, key: str, change: Callable[[dict[str, Any] | None], dict[str, Any]]
    ) -> dict[str, Any]:
        """Read-modify-write with optimistic concurrency: `change` gets the current record (None when
        absent) and returns the new one; it is called again when another writer got there first."""
        item_key = _control_key(workload, key)
        for _ in range(_MAX_STATE_RETRIES):
            resp = self.ddb.get_item(TableName=self.control_table, Key=item_key, ConsistentRead=True)
            item = from_item(resp["Item"]) if "Item" in resp else None
            version = int(item["version"]) if item else 0
            updated = change(json.loads(item["data"]) if item else None)
            kwargs: dict[str, Any] = {
                "TableName": self.control_table,
                "Item": {
                    **item_key,
                    **to_item(
                        {"version": version + 1, "data": json.dumps(updated, default=str, sort_keys=True)}
                    ),
                },
                "ConditionExpression": "version = :v" if item else "attribute_not_exists(pk)",
            }
            if item:
                kwargs["ExpressionAttributeValues"] = {":v": {"N": str(version)}}
            try:
                self.ddb.put_item(**kwargs)
                return updated
            except Exception as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise
        raise StateConflict(f"control record {key} of {workload} kept changing")

    def delete_control(self, workload: str, key: str) -> None:
        self.ddb.delete_item(TableName=self.control_table, Key=_control_key(workload, key))


__all__ = ["Ledger", "StateConflict"]

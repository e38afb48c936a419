"""Once per event: powertools idempotency on a DynamoDB table keyed on the event's id, so an event delivered
twice (EventBridge delivers at least once) is acted on once and the second delivery gets the first answer.

powertools is imported, and the persistence layer (with its DynamoDB client) built, on the first guarded
call of a table, never at import: only the function that needs it pays for it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from chalicelib.adapters import aws

Handler = Callable[..., dict[str, Any]]


class InProgress(Exception):
    """Another invocation is handling this very event right now (its record says "in progress").

    EventBridge delivers at least once, so copies of one event can arrive together; powertools refuses all
    but the first with IdempotencyAlreadyInProgressError. That is a duplicate, not a failure: the caller
    answers "duplicate, in progress" instead of failing the invocation (which would be retried and page the
    on-call through the function's error alarm). If the first invocation dies, its record expires with
    that invocation's timeout and its own retry handles the event.
    """


class OncePerEvent:
    """A handler guarded by an idempotency record: call it with the event as `event=` (and any other
    keyword arguments, which are not part of the key)."""

    def __init__(self, guarded: Handler, config: Any) -> None:
        self._guarded = guarded
        self._config = config

    def __call__(self, *, event: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """The handler's answer (the first one, for a repeat); InProgress while another copy runs."""
        from aws_lambda_powertools.utilities.idempotency.exceptions import (
            IdempotencyAlreadyInProgressError,
        )

        try:
            return self._guarded(event=event, **kwargs)
        except IdempotencyAlreadyInProgressError as exc:
            raise InProgress(str(exc)) from None

    def register_lambda_context(self, context: Any) -> None:
        """In-progress records then expire with this invocation's timeout, so a crashed run is retried."""
        self._config.register_lambda_context(context)


class IdempotentEvents:
    dynamodb = aws.Client("dynamodb")

    def __init__(self, dynamodb: Any | None = None) -> None:
        self.dynamodb = dynamodb
        self._guards: dict[tuple[str, str], OncePerEvent] = {}
        self._lock = threading.Lock()

    def guard(
        self,
        table: str,
        key_prefix: str,
        handler: Handler,
        *,
        expires_after: timedelta = timedelta(hours=24),
    ) -> OncePerEvent:
        """`handler` run at most once per event id (its `id` field) within `expires_after`, its records in
        `table` under `key_prefix`. Built once per (table, prefix): later calls get the first guard."""
        key = (table, key_prefix)
        with self._lock:
            found = self._guards.get(key)
            if found is None:
                from aws_lambda_powertools.utilities.idempotency import (
                    DynamoDBPersistenceLayer,
                    IdempotencyConfig,
                    idempotent_function,
                )

                store = DynamoDBPersistenceLayer(table_name=table, boto3_client=self.dynamodb)
                config = IdempotencyConfig(
                    event_key_jmespath="id", expires_after_seconds=int(expires_after.total_seconds())
                )
                guarded = idempotent_function(
                    data_keyword_argument="event",
                    persistence_store=store,
                    config=config,
                    key_prefix=key_prefix,
                )(handler)
                found = self._guards[key] = OncePerEvent(guarded, config)
            return found

"""Telling humans: SNS notifications with a subject and a readable summary."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.adapters import aws
from chalicelib.models.plan import DRPlan

MAX_SUBJECT = 100  # SNS rejects longer subjects


class Notifier:
    sns = aws.Client("sns")
    sts = aws.Client("sts")

    def __init__(self, sns: Any | None = None, sts: Any | None = None) -> None:
        self.sns = sns
        self.sts = sts
        self._account: str | None = None

    def _account_id(self) -> str:
        if self._account is None:
            self._account = self.sts.get_caller_identity()["Account"]
        return self._account

    def topic_arn(self, plan: DRPlan) -> str:
        region = self.sns.meta.region_name
        return plan.notifications.topic_arn(region, self._account_id())

    def publish(self, plan: DRPlan, subject: str, summary: str, facts: dict[str, Any]) -> str:
        message = summary + "\n\n" + json.dumps(facts, indent=2, sort_keys=True, default=str)
        resp = self.sns.publish(
            TopicArn=self.topic_arn(plan),
            Subject=subject[:MAX_SUBJECT],
            Message=message,
            MessageAttributes={
                "workload": {"DataType": "String", "StringValue": plan.workload},
            },
        )
        return str(resp["MessageId"])

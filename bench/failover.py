"""Failover automation overhead on the local cloud: alarm event entering the handler -> validated switch.

Deliberate waits are zero (sustain 0s, ungraceful mode), so what is measured is Lifeboat's own work plus
the AWS calls it makes and the orchestration between steps. The baseline, measured in the same run, is the
bare minimum a switch costs: one Route 53 change batch and its read-back through the same adapter.
Each run: the quorum's second alarm event is delivered to the real on_alarm function (synchronously, like
an EventBridge target invocation), then the clock stops at RecordFailover's validated_at.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import threading
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import botocore.client  # noqa: E402

from localcloud import lambda_runner  # noqa: E402
from localcloud.alarms import AlarmSimulator  # noqa: E402
from localcloud.resources import names, provision_base  # noqa: E402
from localcloud.server import LocalCloud  # noqa: E402


class Timers:
    """Wall time spent in AWS API calls and in Lambda handlers, per thread, summed."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.totals: dict[str, float] = defaultdict(float)
        self.local = threading.local()

    def add(self, key: str, seconds: float) -> None:
        with self.lock:
            self.totals[key] += seconds

    def reset(self) -> dict[str, float]:
        with self.lock:
            out = dict(self.totals)
            self.totals.clear()
            return out


def instrument(timers: Timers) -> None:
    original_call = botocore.client.BaseClient._make_api_call
    original_invoke = lambda_runner.invoke

    def timed_call(self: Any, operation: str, params: Any) -> Any:
        # Only calls made from inside a Lambda handler are "AWS calls made by Lifeboat".
        inside = getattr(timers.local, "depth", 0) > 0
        start = time.perf_counter()
        try:
            return original_call(self, operation, params)
        finally:
            if inside:
                timers.add("aws", time.perf_counter() - start)
                name = f"{self.meta.service_model.service_name}.{operation}"
                timers.add(f"op:{name}", time.perf_counter() - start)
                timers.add(f"n:{name}", 1)

    def timed_invoke(function: Any, event: Any) -> Any:
        timers.local.depth = getattr(timers.local, "depth", 0) + 1
        start = time.perf_counter()
        try:
            return original_invoke(function, event)
        finally:
            timers.local.depth -= 1
            timers.add("handlers", time.perf_counter() - start)

    botocore.client.BaseClient._make_api_call = timed_call  # type: ignore[method-assign]
    lambda_runner.invoke = timed_invoke  # type: ignore[assignment]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()

    from chalicelib.adapters.ledger import Ledger
    from chalicelib.adapters.traffic import TrafficRouter
    from tests.integration.stack import build_stack

    timers = Timers()
    cloud = LocalCloud().start()
    try:
        provision_base(cloud, stage=cloud.stage)
        stack = build_stack(cloud, sustain="0s", cooldown="0s", confirmation_probe="true")
        stack.servers["primary"].set_faults(down=True)  # a real outage: the confirmation probe agrees
        sim = AlarmSimulator(cloud, warm_up=False)
        ledger = Ledger(names(cloud.stage).ledger_table, cloud.client("dynamodb"))
        router = TrafficRouter(route53=cloud.client("route53"))
        sfn = cloud.client("stepfunctions")
        instrument(timers)

        # Baseline: the bare switch (one change batch + read-back), same adapter, same cloud.
        base = []
        for i in range(args.runs):
            weights = {"primary": 0, "secondary": 100} if i % 2 == 0 else {"primary": 100, "secondary": 0}
            t0 = time.perf_counter()
            router.shift(stack.plan, weights, {})
            router.verify(stack.plan, weights)
            base.append(time.perf_counter() - t0)

        machine = stack.resources.state_machines["failover"]
        totals, aws_share, handler_share = [], [], []
        for i in range(args.runs):
            # Reset: all traffic on the primary, no failover recorded, every alarm OK, the first alarm firing.
            router.shift(stack.plan, {"primary": 100, "secondary": 0}, {})
            ledger.update_state(stack.plan.workload, active_region=None, last_failover_at=None)
            for alarm in stack.plan.trigger.alarms:
                sim.set_state(alarm, "OK", "bench reset")
            sim.set_state(stack.plan.trigger.alarms[0], "ALARM", "bench")
            lambda_runner.drain()
            before = {e["executionArn"] for e in sfn.list_executions(stateMachineArn=machine)["executions"]}
            timers.reset()
            # The completing ALARM: EventBridge delivers it to on_alarm; the clock starts at the event's time.
            transition = sim.set_state(stack.plan.trigger.alarms[1], "ALARM", "bench")
            assert transition is not None
            lambda_runner.drain()
            runs = [e for e in sfn.list_executions(stateMachineArn=machine)["executions"]]
            arn = next(e["executionArn"] for e in runs if e["executionArn"] not in before)
            while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
                time.sleep(0.01)
            desc = sfn.describe_execution(executionArn=arn)
            if desc["status"] != "SUCCEEDED":
                print(f"run {i}: {desc['status']} {desc.get('error')} {desc.get('cause')}", file=sys.stderr)
                return 1
            validated = json.loads(desc["output"])["outcome"]["validated_at"]
            validated_at = datetime.fromisoformat(validated.replace("Z", "+00:00"))
            total = (validated_at - transition.timestamp).total_seconds()
            spent = timers.reset()
            if i == args.runs - 1:  # where the time goes, per AWS operation, for the last run
                for key, seconds in sorted(spent.items(), key=lambda kv: -kv[1]):
                    if key.startswith("op:"):
                        calls = int(spent["n:" + key[3:]])
                        print(f"  {key[3:]:45} {seconds * 1000:7.1f} ms  x{calls}", file=sys.stderr)
            totals.append(total)
            aws_share.append(spent.get("aws", 0.0) / total)
            handler_share.append((spent.get("handlers", 0.0) - spent.get("aws", 0.0)) / total)
        med = statistics.median(totals)
        p95 = sorted(totals)[max(0, math.ceil(0.95 * len(totals)) - 1)]  # nearest rank
        b = statistics.median(base)
        print(f"baseline (one Route 53 change + read-back): median {b * 1000:.1f} ms over {len(base)} runs")
        print(
            f"failover, alarm event -> validated switch: median {med * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms "
            f"over {len(totals)} runs ({med / b:.1f}x the bare switch)"
        )
        print(
            f"share of the time in AWS calls made by Lifeboat: {statistics.median(aws_share):.0%}; "
            f"in Lifeboat's own code: {statistics.median(handler_share):.0%}; "
            f"the rest is Step Functions orchestration and Lambda invocation"
        )
        print(f"RESULT failover_overhead_median_s {med:.3f} target <= 1.0")
        return 0
    finally:
        cloud.stop()
        for server in getattr(locals().get("stack"), "servers", {}).values():
            server.stop()


if __name__ == "__main__":
    raise SystemExit(main())

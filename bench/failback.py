"""Failback step overhead: what the automation adds to each step (shift + verify read-back + gates), measured
from the execution history of real failbacks on the local cloud, against a baseline measured in the same run:
one bare Route 53 change + read-back through the traffic adapter (what any script moving weights would pay).

Each run fails the stack over directly through the adapter (traffic to the secondary, state reset), then runs
a failback with no bake and no approval and reads its history.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# Quiet: no EMF documents or JSON log lines for every task of every run.
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")

TARGET_MS = 300.0
STEP_STATES = ("ShiftStep", "VerifyStep")
GATE_STATES = ("EvaluateGates", "FinalValidation")


def step_overheads(history: list[dict[str, Any]]) -> list[float]:
    """Milliseconds per step: ShiftStep entered -> VerifyStep exited, plus the step's gate task."""
    spans: list[float] = []
    entered: dict[str, datetime] = {}
    current = 0.0
    for ev in history:
        if "stateEnteredEventDetails" in ev:
            entered[ev["stateEnteredEventDetails"]["name"]] = ev["timestamp"]
        elif "stateExitedEventDetails" in ev:
            name = ev["stateExitedEventDetails"]["name"]
            if name == "VerifyStep":
                current = (ev["timestamp"] - entered["ShiftStep"]).total_seconds() * 1000
            elif name in GATE_STATES:
                spans.append(current + (ev["timestamp"] - entered[name]).total_seconds() * 1000)
    return spans


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20, help="failbacks to measure (>= 20)")
    args = parser.parse_args()
    runs = max(20, args.runs)

    from chalicelib.adapters.ledger import Ledger
    from chalicelib.adapters.traffic import TrafficRouter
    from chalicelib.services import failback_ops
    from chalicelib.services.deps import deps
    from localcloud.resources import names, provision_base
    from localcloud.server import LocalCloud
    from tests.integration.stack import build_stack

    cloud = LocalCloud()
    cloud.start()
    stack = None
    try:
        provision_base(cloud, stage=cloud.stage)
        stack = build_stack(cloud, bake="0s", approval_required="false")
        plan = stack.plan
        router = TrafficRouter(route53=cloud.client("route53"))
        ledger = Ledger(names(cloud.stage).ledger_table, cloud.client("dynamodb"))
        on_secondary = {"primary": 0, "secondary": 100}

        def fail_over_directly() -> None:
            router.shift(plan, on_secondary, {})
            ledger.update_state(
                plan.workload,
                active_region=plan.regions.secondary,
                last_failover_at=datetime.now(UTC) - timedelta(hours=1),
            )

        def one_failback() -> list[float]:
            fail_over_directly()
            started = failback_ops.start_failback(plan.workload, "benchmark", "bench", deps())
            desc = stack.wait(started.execution_arn, timeout=120)
            if desc["status"] != "SUCCEEDED":
                raise RuntimeError(f"failback {started.name} ended {desc['status']}: {desc.get('cause')}")
            history = stack.sfn.get_execution_history(executionArn=started.execution_arn, maxResults=1000)
            return step_overheads(history["events"])

        def bare_shift(weights: dict[str, int]) -> float:
            t0 = time.perf_counter()
            router.shift(plan, weights, {})
            router.verify(plan, weights)
            return (time.perf_counter() - t0) * 1000

        one_failback()  # warm-up: first imports and clients of every task, not measured
        overheads: list[float] = []
        baseline: list[float] = []
        for i in range(runs):
            overheads += one_failback()
            # Interleaved with the failbacks so machine noise hits both sides alike.
            baseline.append(bare_shift({"primary": 10, "secondary": 90}))
            baseline.append(bare_shift(on_secondary))
            last = overheads[-1]
            print(f"run {i + 1:2}/{runs}: steps {len(overheads)}, last step {last:.1f} ms", file=sys.stderr)
    finally:
        if stack is not None:
            for server in stack.servers.values():
                server.stop()
        cloud.stop()

    median = statistics.median(overheads)
    base = statistics.median(baseline)
    print(f"failbacks: {runs}, steps measured: {len(overheads)}")
    print(f"step overhead (shift + verify + gates): median {median:.1f} ms, p90 {_p90(overheads):.1f} ms")
    print(f"baseline (one Route 53 change + read-back through the adapter): median {base:.1f} ms")
    print(f"ratio: {median / base:.2f}x the bare change")
    print(f"RESULT failback_step_overhead_median_ms {median:.1f} target <= {TARGET_MS:.0f}")
    return 0


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(round(0.9 * len(ordered))) - 1)]


if __name__ == "__main__":
    raise SystemExit(main())

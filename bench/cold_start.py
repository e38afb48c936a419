"""Cold-start cost of the Lambda package: time to import `app` against a baseline measured in the same run.

The baseline imports only what any Chalice + powertools + pydantic + boto3 function pays for; the ratio says
how much Lifeboat's own modules add. Each sample is a fresh interpreter; samples are interleaved so machine
noise hits both sides alike.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

BASELINE = (
    "import boto3, pydantic, chalice\n"
    "from aws_lambda_powertools import Logger, Metrics, Tracer\n"
    "Logger(service='x'); Metrics(namespace='x', service='x'); Tracer(service='x')\n"
)
APP = "import app\n"
# What a task function's first invocation adds on top: its handler imports its use case and models then.
FIRST_CALL = (
    "import app\nimport chalicelib.services.failover, chalicelib.models.failover, chalicelib.services.deps\n"
)

TIMER = "import time, sys\nt0 = time.perf_counter()\n{body}sys.stdout.write(repr(time.perf_counter() - t0))\n"


def sample(body: str) -> float:
    env = {"PYTHONDONTWRITEBYTECODE": "0", "PATH": "/usr/bin:/bin", "POWERTOOLS_TRACE_DISABLED": "true"}
    out = subprocess.run(
        [sys.executable, "-c", TIMER.format(body=body)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    # Warm the bytecode caches of both sides once so the first sample does not pay compilation.
    sample(BASELINE)
    sample(APP)
    sample(FIRST_CALL)
    base, app = [], []
    for _ in range(args.runs):
        base.append(sample(BASELINE))
        app.append(sample(APP))
    first = [sample(FIRST_CALL) for _ in range(args.runs)]
    b, a = statistics.median(base), statistics.median(app)
    f = statistics.median(first)
    ratio = a / b
    print(f"baseline (boto3+powertools+pydantic+chalice): median {b * 1000:.1f} ms, {args.runs} runs")
    print(f"app (the Lifeboat Lambda package):          median {a * 1000:.1f} ms, {args.runs} runs")
    print(f"ratio app/baseline: {ratio:.3f}")
    print(
        f"for context: app + a failover task's own imports (its first call): median {f * 1000:.1f} ms, "
        f"{f / b:.2f}x the baseline"
    )
    print(f"RESULT cold_start_ratio {ratio:.3f} target <= 1.25")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

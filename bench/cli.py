"""How long `lifeboat --help` takes against a bare Python start (`python -c pass`), measured in the same run.

Both are whole processes, wall clock, as an operator waits for them; samples are interleaved so machine noise
hits both sides alike, and the medians are compared. The CLI imports the cloud stack (moto, boto3) only for
the commands that need it, so its help must stay within a small multiple of starting Python at all.

The last line is `RESULT cli_help_vs_python_start <ratio> target <= 8`.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = 8.0
BARE = [sys.executable, "-c", "pass"]
HELP = [sys.executable, "-m", "lifeboat_cli", "--help"]


def sample(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, capture_output=True, check=True)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--samples", type=int, default=15, help="runs of each command (default 15)")
    args = parser.parse_args(argv)
    sample(HELP)  # warm the bytecode cache and the page cache: the operator's second run, not the first
    bare, help_ = [], []
    for _ in range(args.samples):
        bare.append(sample(BARE))
        help_.append(sample(HELP))
    b, h = statistics.median(bare), statistics.median(help_)
    ratio = h / b
    print(f"python -c pass: median {b * 1000:.1f} ms over {len(bare)} runs")
    print(f"lifeboat --help: median {h * 1000:.1f} ms over {len(help_)} runs")
    print(f"RESULT cli_help_vs_python_start {ratio:.2f} target <= {TARGET:g}")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())

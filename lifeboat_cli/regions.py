"""Write chalicelib/models/aws_regions.py: the AWS regions botocore's endpoints data lists, per partition.

The plan model checks region names against that list (with a "did you mean"), but the models layer may not
import boto3 or botocore, so the list lives in a generated module. `python -m lifeboat_cli.regions` rewrites
it from the installed botocore; `--check` exits 1 when it is out of date (tests/unit/test_regions.py does
the same comparison).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import botocore.loaders

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "chalicelib" / "models" / "aws_regions.py"


def regions_by_partition() -> dict[str, tuple[str, ...]]:
    """partition -> its regions, as botocore's endpoints data lists them (get_available_regions reads it)."""
    data = botocore.loaders.create_loader().load_data("endpoints")
    return {p["partition"]: tuple(sorted(p.get("regions", {}))) for p in data["partitions"]}


def render() -> str:
    lines = [
        '"""AWS regions per partition, from botocore\'s endpoints data. Generated: do not edit by hand.',
        "",
        "Regenerate with `python -m lifeboat_cli.regions` after upgrading botocore",
        "(tests/unit/test_regions.py fails until then). Lifeboat's models may not import botocore,",
        "so the plan model reads this list.",
        '"""',
        "",
        "REGIONS: dict[str, tuple[str, ...]] = {",
    ]
    for partition, names in sorted(regions_by_partition().items()):
        if len(names) == 1:  # as ruff formats a one-item tuple
            lines.append(f'    "{partition}": ("{names[0]}",),')
            continue
        lines.append(f'    "{partition}": (')
        lines += [f'        "{name}",' for name in names]
        lines.append("    ),")
    lines += [
        "}",
        "",
        "ALL_REGIONS: frozenset[str] = frozenset(r for names in REGIONS.values() for r in names)",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 when the module is out of date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = OUTPUT.read_text() if OUTPUT.exists() else ""
        if current != text:
            stale = OUTPUT.relative_to(ROOT)
            sys.stderr.write(f"{stale} is out of date: run python -m lifeboat_cli.regions\n")
            return 1
        return 0
    OUTPUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

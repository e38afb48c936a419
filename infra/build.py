"""`make package`: render the merge template of each Lifeboat copy and run `chalice package` with it.

    python -m infra.build package --stage dev [--region us-west-2 ...] [--home-region R] [--plans plans]
        -> build/<stage>/<region>/{merge-template.json, sam.json, deployment.zip}
    python -m infra.build render --stage dev --region us-west-2     (merge template on stdout; no Chalice)
    python -m infra.build package --stage prod --hosted-zone lifeboat.internal.=Z0123456789ABC
        (outside dev, the id of every hosted zone a plan names by name only: see docs/deploy.md)
    python -m infra.build env --stage dev --region us-west-2        (export lines from the deployed stack)

Packaging needs no AWS credentials and makes no AWS call: Chalice only builds the zip (dependencies come from
pip's index or its cache in .chalice/deployments/) and writes the SAM template.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalicelib.models.plan import DRPlan
from chalicelib.models.planfile import load_plan_files
from infra.chalice_cli import pip_environment
from infra.checks import iam_violations
from infra.template import Target, TemplateError, default_home_region, plan_regions, render

ROOT = Path(__file__).resolve().parent.parent
PLAN_SUFFIXES = (".yaml", ".yml")


class BuildError(RuntimeError):
    """Packaging failed; the message says where."""


@dataclass(frozen=True)
class Package:
    stage: str
    region: str
    directory: Path

    @property
    def template_path(self) -> Path:
        return self.directory / "sam.json"

    @property
    def zip_path(self) -> Path:
        return self.directory / "deployment.zip"

    def template(self) -> dict[str, Any]:
        return json.loads(self.template_path.read_text())


def load_plans(directory: Path) -> list[DRPlan]:
    files = sorted(p for p in Path(directory).iterdir() if p.suffix in PLAN_SUFFIXES)
    if not files:
        raise BuildError(f"no plans (*.yaml) in {directory}")
    return load_plan_files(files)  # two plans of one workload are an error naming both files


def stage_environment(stage: str, project_dir: Path = ROOT) -> dict[str, str]:
    """The environment `chalice package --stage <stage>` imports the app with: .chalice/config.json's
    top-level `environment_variables`, then the stage's."""
    config = json.loads((project_dir / ".chalice" / "config.json").read_text())
    stages = config.get("stages", {})
    if stage not in stages:
        known = ", ".join(sorted(stages))
        raise BuildError(f"stage {stage!r} is not in .chalice/config.json (stages: {known})")
    return {
        **config.get("environment_variables", {}),
        **stages[stage].get("environment_variables", {}),
    }


# Modules that fix names at import time from the stage (the replication queue of `on_sqs_message`).
_STAGE_MODULES = ("app", "chalicelib.blueprints")
_apps: dict[tuple[str, Path], Any] = {}


def load_app(stage: str, project_dir: Path = ROOT) -> Any:
    """The Chalice app as `chalice package --stage <stage>` imports it: with the stage's environment, so what
    app.py names at import (`lifeboat-<stage>-replication-events`) is the stage's. app.py and the blueprints
    are imported afresh for a stage this process has not loaded yet (one process may render several)."""
    key = (stage, project_dir)
    if key in _apps:
        return _apps[key]
    if str(project_dir) not in sys.path:
        sys.path.insert(0, str(project_dir))
    env = stage_environment(stage, project_dir)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    # Imported afresh, then the process gets back the modules it had: a stage's app must never become the
    # `app` the rest of the process imports (the local cloud's handlers, in tests rendering several stages).
    kept = {name: sys.modules.pop(name) for name in _stage_modules()}
    try:
        app = _apps[key] = importlib.import_module("app").app
    finally:
        for name in _stage_modules():
            del sys.modules[name]
        sys.modules.update(kept)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return app


def _stage_modules() -> list[str]:
    return [m for m in sys.modules if m in _STAGE_MODULES or m.startswith(f"{_STAGE_MODULES[1]}.")]


def targets(
    plans: Sequence[DRPlan],
    stage: str,
    regions: Sequence[str] | None,
    home_region: str | None,
    hosted_zones: Mapping[str, str] | None = None,
) -> list[Target]:
    every = plan_regions(plans)
    home = home_region or default_home_region(plans)
    wanted = list(regions) if regions else list(every)
    unknown = [r for r in wanted if r not in every]
    if unknown:
        raise BuildError(f"{', '.join(unknown)}: no plan uses this region (plans use {', '.join(every)})")
    zones = dict(hosted_zones or {})
    return [
        Target(stage=stage, region=r, home_region=home, regions=every, hosted_zones=zones) for r in wanted
    ]


ZONE_ID = re.compile(r"^(/hostedzone/)?[A-Z0-9]{1,32}$")


def parse_hosted_zones(values: Sequence[str]) -> dict[str, str]:
    """`--hosted-zone NAME=ID` arguments -> {name: id}; ids as Route 53 prints them (Z.., /hostedzone/Z..)."""
    out: dict[str, str] = {}
    for value in values:
        name, sep, zone_id = value.partition("=")
        if not sep or not name or not ZONE_ID.match(zone_id):
            raise BuildError(
                f"--hosted-zone {value!r}: expected <zone name>=<zone id>, e.g. example.com=Z0123ABC"
            )
        out[name] = zone_id.rsplit("/", 1)[-1]
    return out


def chalice_env(region: str) -> dict[str, str]:
    """Chalice's environment: a region for botocore's sake, never the caller's credentials or endpoints."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_DEFAULT_REGION=region,
        AWS_REGION=region,
        AWS_ACCESS_KEY_ID="packaging-needs-no-credentials",
        AWS_SECRET_ACCESS_KEY="packaging-needs-no-credentials",
        # Any AWS call would fail fast here instead of reaching AWS.
        AWS_ENDPOINT_URL="http://127.0.0.1:9",
    )
    return env


def run_chalice(stage: str, merge_template: Path, out: Path, region: str, project_dir: Path = ROOT) -> None:
    # infra.chalice_cli: Chalice packaging for the Lambda runtime, not for this interpreter's version.
    command = [sys.executable, "-m", "infra.chalice_cli", "--project-dir", str(project_dir)]
    command += ["package", "--stage", stage, "--merge-template", str(merge_template), str(out)]
    env = {**chalice_env(region), **pip_environment(), "PYTHONPATH": str(ROOT)}
    result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BuildError(f"chalice package failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")


def check_merged(template: dict[str, Any], merge: dict[str, Any]) -> None:
    """Every resource the merge template only amended must be one Chalice generated (names drifted?)."""
    resources = template.get("Resources", {})
    stubs = [name for name, body in resources.items() if "Type" not in body]
    if stubs:
        raise BuildError(
            "the merge template amends resources Chalice did not generate: "
            + ", ".join(sorted(stubs))
            + " (did Chalice's naming change? see infra/template.app_functions)"
        )
    if "DefaultRole" in resources:
        raise BuildError(
            "Chalice generated DefaultRole: autogen_policy must be false in .chalice/config.json"
        )
    for name, body in resources.items():
        if body["Type"] == "AWS::Serverless::Function" and name not in merge["Resources"]:
            raise BuildError(f"function {name} has no least-privilege role in the merge template")


def package(
    stage: str,
    *,
    plans_dir: Path = ROOT / "plans",
    regions: Sequence[str] | None = None,
    home_region: str | None = None,
    out_dir: Path = ROOT / "build",
    project_dir: Path = ROOT,
    hosted_zones: Mapping[str, str] | None = None,
) -> list[Package]:
    plans = load_plans(plans_dir)
    app = load_app(stage, project_dir)
    built = []
    for target in targets(plans, stage, regions, home_region, hosted_zones):
        directory = out_dir / stage / target.region
        directory.mkdir(parents=True, exist_ok=True)
        try:
            merge = render(app, plans, target)
        except TemplateError as exc:
            raise BuildError(str(exc)) from None
        merge_path = directory / "merge-template.json"
        merge_path.write_text(json.dumps(merge, indent=2, sort_keys=True) + "\n")
        run_chalice(stage, merge_path, directory, target.region, project_dir)
        result = Package(stage=stage, region=target.region, directory=directory)
        check_merged(result.template(), merge)
        violations = iam_violations(result.template())
        if violations:
            raise BuildError("least-privilege rules broken:\n  " + "\n  ".join(violations))
        built.append(result)
    return built


def stack_env(stage: str, region: str, stack_name: str | None = None) -> dict[str, str]:
    """LIFEBOAT_* values of a deployed copy, from its stack outputs (needs AWS credentials)."""
    import boto3

    name = stack_name or f"lifeboat-{stage}"
    stack = boto3.client("cloudformation", region_name=region).describe_stacks(StackName=name)["Stacks"][0]
    env = {"AWS_REGION": region}
    for output in stack.get("Outputs", []):
        description = output.get("Description", "")
        if description.startswith("LIFEBOAT_"):
            env[description] = output["OutputValue"]
    return env


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m infra.build",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True)
    for command in ("package", "render", "env"):
        c = sub.add_parser(command)
        c.add_argument("--stage", default="dev")
        c.add_argument(
            "--region", action="append", dest="regions", help="repeatable; default: every plan region"
        )
        c.add_argument("--home-region", help="region whose copy creates the global tables")
        c.add_argument("--plans", type=Path, default=ROOT / "plans")
        c.add_argument("--out", type=Path, default=ROOT / "build")
        c.add_argument("--stack-name", help="env: the deployed stack (default lifeboat-<stage>)")
        c.add_argument(
            "--hosted-zone",
            action="append",
            dest="hosted_zones",
            default=[],
            metavar="NAME=ID",
            help="repeatable: the id of a hosted zone a plan names by name only (required outside dev)",
        )
    args = p.parse_args(argv)
    try:
        zones = parse_hosted_zones(args.hosted_zones)
        if args.command == "package":
            for built in package(
                args.stage,
                plans_dir=args.plans,
                regions=args.regions,
                home_region=args.home_region,
                out_dir=args.out,
                hosted_zones=zones,
            ):
                print(f"{built.region}: {built.template_path}")
        elif args.command == "render":
            plans = load_plans(args.plans)
            for target in targets(plans, args.stage, args.regions, args.home_region, zones):
                print(json.dumps(render(load_app(args.stage), plans, target), indent=2, sort_keys=True))
        else:
            regions = args.regions or []
            if len(regions) != 1:
                raise BuildError("env needs exactly one --region")
            for key, value in sorted(stack_env(args.stage, regions[0], args.stack_name).items()):
                print(f"export {key}={value}")
    except (BuildError, TemplateError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

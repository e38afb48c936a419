"""Offline checks of the packaged templates (`make infra`): cfn-lint, checkov, asl-validator on every state
machine definition, and the least-privilege IAM rules. This module is the one place every accepted finding
is listed with its reason (`python -m infra.checks explain` prints them all):

- SUPPRESSIONS: checkov checks, per resource type (and, where it matters, which resources);
- CFN_LINT_GAPS: cfn-lint findings on valid CloudFormation or ASL that its schemas lack;
- ASL_VALIDATOR_GAPS: asl-validator findings (none);
- IAM_EXCEPTIONS: the "*" resources the IAM rules accept (`infra.permissions.UNSCOPABLE`).

checkov pins boto3 1.35 and networkx < 2.7, which cannot live beside our pins (boto3 1.43, moto 5.2.5): pip
resolves checkov down to a 2022 release in the project venv. So it gets its own venv, `<venv>/tools/checkov`,
installed by `make setup` (`python -m infra.checks install`) from infra/requirements-checkov.txt and run as a
subprocess with `--skip-download` (no Prisma Cloud calls: this runs without network). asl-validator (npm) is
installed by the same command into `<venv>/tools/asl-validator`, pinned; without npm it is skipped, saying so.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import venv
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "infra" / "requirements-checkov.txt"
CHECKOV_VENV = Path(sys.prefix) / "tools" / "checkov"
CHECKOV = CHECKOV_VENV / "bin" / "checkov"
CFN_LINT = Path(sys.executable).with_name("cfn-lint")
ASL_VALIDATOR_VERSION = "4.0.0"
ASL_VALIDATOR_DIR = Path(sys.prefix) / "tools" / "asl-validator"
ASL_VALIDATOR = ASL_VALIDATOR_DIR / "node_modules" / ".bin" / "asl-validator"


@dataclass(frozen=True)
class Finding:
    check: str
    resource: str  # "<Type>.<LogicalId>"
    message: str

    @property
    def logical_id(self) -> str:
        return self.resource.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class Suppression:
    reason: str
    types: tuple[str, ...]
    applies: Callable[[Mapping[str, Any]], bool] = lambda resource: True


def _synchronous(resource: Mapping[str, Any]) -> bool:
    # Without event sources a function is invoked synchronously (Step Functions Task states, API Gateway); an
    # SQS event source mapping polls and invokes synchronously too (failures return to the queue's redrive).
    events = resource.get("Properties", {}).get("Events") or {}
    return all(event.get("Type") == "SQS" for event in events.values())


FUNCTION = ("AWS::Serverless::Function", "AWS::Lambda::Function")

# checkov check -> why the finding is accepted, and where. Anything not covered here fails tests/infra.
SUPPRESSIONS: dict[str, Suppression] = {
    "CKV_AWS_115": Suppression(
        "Only the failover machine's task functions reserve concurrency (infra/template.py "
        "FAILOVER_RESERVED_CONCURRENCY), in the regions that run failovers: a failover must not be throttled "
        "by the workloads it protects. Every reservation shrinks the account's unreserved pool (AWS keeps "
        "100 of it), so the others run on it, bounded by design: one operation per workload (lease lock), "
        "EventBridge retry policies.",
        FUNCTION,
        lambda resource: "ReservedConcurrentExecutions" not in resource.get("Properties", {}),
    ),
    "CKV_AWS_116": Suppression(
        "Invoked synchronously (Step Functions Task states, API Gateway, SQS event source mappings): "
        "Lambda's DLQ only applies to asynchronous invocations; failures go back to the caller (Retry/Catch, "
        "HTTP 5xx, the queue's own redrive to its DLQ). The functions EventBridge invokes asynchronously "
        "(rules, schedules) do have a DLQ.",
        FUNCTION,
        _synchronous,
    ),
    "CKV_AWS_117": Suppression(
        "No VPC: the functions call AWS APIs in two regions and the plans' inference endpoints; a VPC would "
        "add "
        "NAT gateways and interface endpoints in both regions (each a new failure mode for a DR tool) and "
        "protects nothing the functions hold.",
        FUNCTION,
    ),
    "CKV_AWS_173": Suppression(
        "The environment holds resource names only (no secrets); Lambda encrypts it at rest with an AWS "
        "managed key. A CMK would add a key every cold start depends on.",
        FUNCTION,
    ),
    "CKV_AWS_119": Suppression(
        "DynamoDB encrypts with the AWS managed key (SSEType KMS). A customer managed key for global tables "
        "needs one key per replica region, each a dependency of every read during a regional failure.",
        ("AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable"),
    ),
    "CKV_AWS_18": Suppression(
        "Server access logging needs a log bucket that needs its own logging; object-level access to the "
        "plan "
        "and evidence buckets is audited with CloudTrail data events instead (docs/deploy.md).",
        ("AWS::S3::Bucket",),
    ),
    "CKV_AWS_27": Suppression(
        "Encrypted with SSE-SQS (SqsManagedSseEnabled), which checkov does not recognise (it only looks for "
        "KmsMasterKeyId). A customer managed key would need S3 and EventBridge in its key policy; a mistake "
        "there silently drops replication events and dead letters.",
        ("AWS::SQS::Queue",),
    ),
    "CKV_AWS_120": Suppression(
        "The console API must answer live state (status, executions); cached answers would mislead operators "
        "during an incident.",
        ("AWS::Serverless::Api", "AWS::ApiGateway::Stage"),
    ),
    "CKV_AWS_76": Suppression(
        "API Gateway access logging needs the account-wide API Gateway CloudWatch role "
        "(AWS::ApiGateway::Account"
        "), a singleton this stack must not own; every mutating call is recorded in the ledger with the "
        "caller's IAM identity, and CloudTrail records the API calls.",
        ("AWS::Serverless::Api", "AWS::ApiGateway::Stage"),
    ),
}


READ_VERBS = ("List", "Get", "Describe", "Query", "Scan", "BatchGet", "Head", "Simulate", "Lookup")
# A resource type followed by a bare wildcard ("hostedzone/*", "table/*", "stateMachine:*"): every resource of
# that type. Fine for reads, a violation for writes unless a Condition narrows it.
_TYPE_WILDCARD = re.compile(
    r"(hostedzone|healthcheck|table|stateMachine|execution|function|endpoint|endpoint-config|model|alarm|key|"
    r"role|log-group|event-bus|rule)[:/]\*$"
)


# IAM rule -> why the template may still do it. Only one: "*" as the resource of the actions AWS offers no
# resource-level permission for (infra/permissions.py UNSCOPABLE, each named in a role's statement).
IAM_EXCEPTIONS: dict[str, str] = {
    "resource '*'": "AWS authorises the actions of infra.permissions.UNSCOPABLE only on '*' (they have no "
    "resource type in the Service Authorization Reference): reads, and states:SendTaskSuccess, whose task "
    "token is the capability. Each is granted in a statement of its own, for the one call that needs it.",
}


def is_read(action: str) -> bool:
    return action.split(":", 1)[-1].startswith(READ_VERBS)


def _texts(value: Any) -> list[str]:
    """The ARN texts a resource value can be checked on (Fn::Sub templates; Ref/GetAtt name one resource)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict) and "Fn::Sub" in value:
        sub = value["Fn::Sub"]
        return [sub if isinstance(sub, str) else sub[0]]
    return []


def _policy_documents(template: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    docs = []
    for name, resource in template.get("Resources", {}).items():
        props = resource.get("Properties", {})
        kind = resource.get("Type")
        if kind == "AWS::IAM::Role":
            docs += [
                (f"{name}/{p.get('PolicyName')}", p["PolicyDocument"]) for p in props.get("Policies", [])
            ]
        elif kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            docs.append((name, props["PolicyDocument"]))
        elif kind == "AWS::Serverless::Function":
            for policy in props.get("Policies", []) if isinstance(props.get("Policies"), list) else []:
                if isinstance(policy, dict) and "Statement" in policy:
                    docs.append((name, policy))
    return docs


def iam_violations(template: Mapping[str, Any]) -> list[str]:
    """Least-privilege rules on every identity policy of the template (see infra/permissions.py)."""
    from infra.permissions import UNSCOPABLE

    problems = []
    for where, doc in _policy_documents(template):
        statements = doc.get("Statement", [])
        for st in statements if isinstance(statements, list) else [statements]:
            if st.get("Effect") != "Allow":
                continue
            sid = f"{where}:{st.get('Sid', '?')}"
            actions = st.get("Action", [])
            actions = [actions] if isinstance(actions, str) else list(actions)
            resources = st.get("Resource", [])
            resources = [resources] if not isinstance(resources, list) else resources
            if "NotAction" in st or "NotResource" in st:
                problems.append(f"{sid}: NotAction/NotResource grant more than they name")
            for action in actions:
                if action == "*" or action.endswith(":*"):
                    problems.append(f"{sid}: action {action!r} grants a whole service")
            writes = [a for a in actions if not is_read(a)]
            if "*" in resources:
                unscoped = [a for a in actions if a not in UNSCOPABLE]
                if unscoped:
                    problems.append(f"{sid}: resource '*' for {unscoped} (scope them to ARNs)")
            if writes and not st.get("Condition"):
                for text in (t for r in resources for t in _texts(r)):
                    if _TYPE_WILDCARD.search(text):
                        problems.append(f"{sid}: {writes} on every {text.rsplit(':', 1)[-1]} ({text})")
    return problems


@dataclass(frozen=True)
class LintGap:
    """A cfn-lint finding that is wrong about valid CloudFormation (a gap in its schemas), and why."""

    rule: str
    reason: str
    applies: Callable[[Mapping[str, Any], list[Any], str], bool]


def _succeed_with_paths(template: Mapping[str, Any], path: list[Any], message: str) -> bool:
    # [..., "Definition", "States", <name>, "OutputPath"] of a Succeed state
    if len(path) < 3 or path[-1] not in ("InputPath", "OutputPath") or path[-3] != "States":
        return False
    node: Any = template
    for part in path[:-1]:
        node = node[part] if isinstance(node, dict) and part in node else None
    return isinstance(node, dict) and node.get("Type") == "Succeed" and "was unexpected" in message


CFN_LINT_GAPS = [
    LintGap(
        "E3601",
        "cfn-lint's ASL schema allows only Comment/Output on a Succeed state, but the Amazon States Language "
        "lets a JSONPath Succeed state filter its output with InputPath/OutputPath (the verification machine "
        "ends with OutputPath $.report).",
        _succeed_with_paths,
    )
]


# asl-validator finding -> why it is accepted. None: every generated definition validates as it is.
ASL_VALIDATOR_GAPS: dict[str, str] = {}


def lint_unexplained(matches: list[dict[str, Any]], templates: Mapping[str, Mapping[str, Any]]) -> list[Any]:
    """cfn-lint matches no CFN_LINT_GAPS entry explains; `templates` maps file name -> template."""
    out = []
    for m in matches:
        template = templates.get(m.get("Filename", ""), {})
        path, rule, message = m["Location"]["Path"], m["Rule"]["Id"], m["Message"]
        if not any(g.rule == rule and g.applies(template, path, message) for g in CFN_LINT_GAPS):
            out.append((rule, message, path, m.get("Filename")))
    return out


def install_asl_validator() -> Path | None:
    """npm-install the pinned asl-validator into <venv>/tools/asl-validator (idempotent); None without npm."""
    if ASL_VALIDATOR.exists():
        return ASL_VALIDATOR
    npm = shutil.which("npm")
    if npm is None:
        return None
    ASL_VALIDATOR_DIR.mkdir(parents=True, exist_ok=True)
    command = [npm, "install", "--prefix", str(ASL_VALIDATOR_DIR), f"asl-validator@{ASL_VALIDATOR_VERSION}"]
    subprocess.run([*command, "--no-audit", "--no-fund", "--silent"], check=True)
    return ASL_VALIDATOR


def state_machine_definitions(template: Mapping[str, Any]) -> dict[str, str]:
    """Logical id -> the ASL of every state machine of a template, its DefinitionSubstitutions replaced by
    Lambda ARNs as CloudFormation would (function names from the template's own functions)."""
    region = template.get("Metadata", {}).get("Lifeboat", {}).get("region", "us-east-1")
    resources = template.get("Resources", {})
    out = {}
    for logical_id, resource in resources.items():
        if resource.get("Type") != "AWS::StepFunctions::StateMachine":
            continue
        props = resource["Properties"]
        text = json.dumps(props["Definition"])
        for variable, value in props.get("DefinitionSubstitutions", {}).items():
            function = value["Fn::GetAtt"][0]
            name = resources.get(function, {}).get("Properties", {}).get("FunctionName", function)
            text = text.replace(f"${{{variable}}}", f"arn:aws:lambda:{region}:123456789012:function:{name}")
        out[logical_id] = text
    return out


def asl_validate(definition: Path) -> list[str]:
    """asl-validator's findings on one ASL file (none when it is valid)."""
    result = subprocess.run(
        [str(ASL_VALIDATOR), "--json-path", str(definition)], capture_output=True, text=True, check=False
    )
    if result.returncode == 0:
        return []
    lines = [line.strip() for line in (result.stdout + result.stderr).splitlines()]
    findings = [line for line in lines if line and not line.startswith(("✕", "✓"))]
    if not findings:
        return [f"asl-validator failed ({result.returncode}): {result.stderr[-2000:]}"]
    return [f for f in findings if f.split(":", 1)[0] not in ASL_VALIDATOR_GAPS]


def install_checkov() -> Path:
    """Create the isolated checkov venv (idempotent); returns the checkov executable."""
    if CHECKOV.exists():
        return CHECKOV
    venv.EnvBuilder(with_pip=True, clear=True).create(CHECKOV_VENV)
    pip = [
        str(CHECKOV_VENV / "bin" / "python"),
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
    ]
    subprocess.run([*pip, "-r", str(REQUIREMENTS)], check=True)
    return CHECKOV


def checkov(template: Path) -> list[Finding]:
    """Failed checkov checks of a CloudFormation/SAM template (offline)."""
    result = subprocess.run(
        [
            str(CHECKOV),
            "--file",
            str(template),
            "--framework",
            "cloudformation",
            "--skip-download",
            "--quiet",
            "--compact",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"},
    )
    if result.returncode not in (0, 1) or not result.stdout.strip():
        raise RuntimeError(f"checkov failed ({result.returncode}): {result.stderr[-2000:]}")
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    return [
        Finding(check=c["check_id"], resource=c["resource"], message=c["check_name"])
        for r in reports
        for c in r.get("results", {}).get("failed_checks", [])
    ]


def unexplained(findings: list[Finding], template: Mapping[str, Any]) -> list[Finding]:
    resources = template.get("Resources", {})
    out = []
    for f in findings:
        rule = SUPPRESSIONS.get(f.check)
        resource = resources.get(f.logical_id, {})
        if rule is None or resource.get("Type") not in rule.types or not rule.applies(resource):
            out.append(f)
    return out


def cfn_lint(*templates: Path) -> list[dict[str, Any]]:
    """cfn-lint matches (errors, warnings and informational) as dicts (Rule.Id, Level, Message, Location)."""
    result = subprocess.run(
        [str(CFN_LINT), "--format", "json", "--include-checks", "I", "--", *map(str, templates)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode & 1:  # 2, 4, 8: errors, warnings, informational found; 1: cfn-lint itself failed
        raise RuntimeError(f"cfn-lint failed ({result.returncode}): {result.stderr[-2000:]}")
    return list(json.loads(result.stdout or "[]"))


def explain() -> str:
    """Every accepted finding of `make infra`, with its reason."""
    out = ["checkov (SUPPRESSIONS):"]
    for check, suppression in SUPPRESSIONS.items():
        out.append(f"  {check} on {', '.join(suppression.types)}: {suppression.reason}")
    out.append("cfn-lint (CFN_LINT_GAPS):")
    out += [f"  {gap.rule}: {gap.reason}" for gap in CFN_LINT_GAPS]
    out.append("asl-validator (ASL_VALIDATOR_GAPS):")
    out += [f"  {code}: {reason}" for code, reason in ASL_VALIDATOR_GAPS.items()] or ["  none"]
    from infra.permissions import UNSCOPABLE

    out.append("IAM rules (IAM_EXCEPTIONS):")
    out += [f"  {rule}: {reason}" for rule, reason in IAM_EXCEPTIONS.items()]
    out.append(f"  UNSCOPABLE: {', '.join(sorted(UNSCOPABLE))}")
    return "\n".join(out)


def main(argv: list[str]) -> int:
    if argv[:1] == ["install"]:
        print(install_checkov())
        validator = install_asl_validator()
        print(
            validator or "npm not found: asl-validator not installed, tests/infra skips it (install Node.js)"
        )
        return 0
    if argv[:1] == ["explain"]:
        print(explain())
        return 0
    print("usage: python -m infra.checks install|explain", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

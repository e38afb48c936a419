"""Deploying a packaged Lifeboat template into the local cloud's CloudFormation (moto), as `sam deploy` would.

Steps, each the local stand-in of a real one:
1. upload deployment.zip to a bucket and point every function's CodeUri at it (`sam package`);
2. expand the SAM transform with aws-sam-translator (CloudFormation's transform does this in AWS);
3. adapt what moto's CloudFormation lacks (listed in MOTO_ADAPTATIONS, each with what AWS does instead);
4. create the stack and return its outputs.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

from localcloud.server import LocalCloud

# Resource types moto's CloudFormation cannot create (or, for the REST API, cannot create from an OpenAPI
# body: it imports no methods, so the deployment fails). They guard or observe the stack (policies, alarms) or
# serve the console API; the failover path depends on none of them, and tests/infra/test_template.py checks
# them. Resources and outputs that refer to them are left out too.
MOTO_UNSUPPORTED = frozenset(
    {
        "AWS::CloudWatch::Alarm",
        "AWS::S3::BucketPolicy",
        "AWS::SQS::QueuePolicy",
        "AWS::ApiGateway::RestApi",
        "AWS::ApiGateway::Deployment",
        "AWS::ApiGateway::Stage",
    }
)

MOTO_ADAPTATIONS = {
    "AWS::DynamoDB::GlobalTable": "created as the AWS::DynamoDB::Table replica of this region (same keys, "
    "stream, SSE, TTL and the replica's PITR): moto has no global tables",
    "AWS::StepFunctions::StateMachine": "created with CreateStateMachine right after the stack, with the "
    "DefinitionSubstitutions resolved against the stack's functions (what CloudFormation does): moto's "
    "CloudFormation registers state machines in a backend its executing Step Functions engine never reads",
    "AWS::Lambda::EventInvokeConfig": "set with PutFunctionEventInvokeConfig right after the stack: moto's "
    "CloudFormation has no such resource, its Lambda API has the call",
}


class _NoManagedPolicies:
    """SAM asks for AWS managed policy ARNs only for `Policies` shorthands, which Lifeboat never uses."""

    def load(self) -> dict[str, str]:
        return {}


def expand_sam(template: dict[str, Any], code_bucket: str, code_key: str) -> dict[str, Any]:
    from samtranslator.translator.transform import transform

    sam = copy.deepcopy(template)
    for resource in sam["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = {"Bucket": code_bucket, "Key": code_key}
    return dict(transform(sam, {}, _NoManagedPolicies()))


def adapt_for_moto(
    template: dict[str, Any],
    region: str,
    machines: dict[str, Any] | None = None,
    invoke_configs: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], set[str]]:
    """The template moto can create, and the resource types that had to be left out. State machines are
    moved to `machines` (logical id -> resource) for `create_state_machines`, asynchronous invocation
    settings to `invoke_configs` for `put_invoke_configs`."""
    from moto.cloudformation.parsing import get_model_map

    machines = {} if machines is None else machines
    invoke_configs = {} if invoke_configs is None else invoke_configs
    supported = set(get_model_map())
    out = copy.deepcopy(template)
    dropped: set[str] = set()
    for name, resource in list(out["Resources"].items()):
        kind = resource["Type"]
        props = resource.get("Properties", {})
        if kind == "AWS::DynamoDB::GlobalTable":
            replica = next(r for r in props.pop("Replicas") if r["Region"] == region)
            props["PointInTimeRecoverySpecification"] = replica["PointInTimeRecoverySpecification"]
            props["SSESpecification"] = {"SSEEnabled": props["SSESpecification"]["SSEEnabled"]}
            resource["Type"] = "AWS::DynamoDB::Table"
        elif kind == "AWS::StepFunctions::StateMachine":
            machines[name] = resource
            del out["Resources"][name]
        elif kind == "AWS::Lambda::EventInvokeConfig":
            invoke_configs[name] = resource
            del out["Resources"][name]
        elif kind not in supported or kind in MOTO_UNSUPPORTED:
            dropped.add(kind)
            del out["Resources"][name]
    _drop_dangling(out)
    return out, dropped


def create_state_machines(cloud: LocalCloud, stack_name: str, machines: dict[str, Any]) -> dict[str, str]:
    """CreateStateMachine for each machine, substitutions resolved against the stack: logical id -> ARN."""
    cfn, lam, iam = cloud.client("cloudformation"), cloud.client("lambda"), cloud.client("iam")
    physical = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cfn.describe_stack_resources(StackName=stack_name)["StackResources"]
        if "PhysicalResourceId" in r
    }

    def arn_of(value: dict[str, Any]) -> str:
        logical, attribute = value["Fn::GetAtt"]
        assert attribute == "Arn", value
        try:
            return str(lam.get_function(FunctionName=physical[logical])["Configuration"]["FunctionArn"])
        except lam.exceptions.ResourceNotFoundException:
            return str(iam.get_role(RoleName=physical[logical])["Role"]["Arn"])

    sfn = cloud.client("stepfunctions")
    arns = {}
    for logical_id, resource in machines.items():
        props = resource["Properties"]
        definition = json.dumps(props["Definition"])
        for variable, value in props.get("DefinitionSubstitutions", {}).items():
            definition = definition.replace(f"${{{variable}}}", arn_of(value))
        arns[logical_id] = sfn.create_state_machine(
            name=props["StateMachineName"], definition=definition, roleArn=arn_of(props["RoleArn"])
        )["stateMachineArn"]
    return arns


def put_invoke_configs(cloud: LocalCloud, stack_name: str, configs: dict[str, Any]) -> None:
    """PutFunctionEventInvokeConfig for each AWS::Lambda::EventInvokeConfig, on the stack's function."""
    cfn, lam = cloud.client("cloudformation"), cloud.client("lambda")
    physical = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cfn.describe_stack_resources(StackName=stack_name)["StackResources"]
        if "PhysicalResourceId" in r
    }
    for resource in configs.values():
        props = dict(resource["Properties"])
        function = props.pop("FunctionName")
        props.pop("DestinationConfig", None)
        name = physical[function["Ref"]] if isinstance(function, dict) else function
        lam.put_function_event_invoke_config(FunctionName=name, **props)


def _refers(value: Any, names: set[str]) -> bool:
    if isinstance(value, dict):
        if value.get("Ref") in names:
            return True
        att = value.get("Fn::GetAtt")
        if isinstance(att, list) and att and att[0] in names:
            return True
        sub = value.get("Fn::Sub")
        if sub is not None:
            text, variables = (sub, {}) if isinstance(sub, str) else (sub[0], sub[1])
            if any((f"${{{n}}}" in text or f"${{{n}." in text) and n not in variables for n in names):
                return True
        return any(_refers(v, names) for v in value.values())
    if isinstance(value, list):
        return any(_refers(v, names) for v in value)
    return False


def _drop_dangling(template: dict[str, Any]) -> None:
    """Leave out what refers to a resource that was left out (until nothing does)."""
    while True:
        present = set(template["Resources"])
        gone = {
            name for name, body in template["Resources"].items() if _refers(body, _missing(body, present))
        }
        if not gone:
            break
        for name in gone:
            del template["Resources"][name]
    present = set(template["Resources"])
    for key, output in list(template.get("Outputs", {}).items()):
        if _refers(output, _missing(output, present)):
            del template["Outputs"][key]


def _missing(value: Any, present: set[str]) -> set[str]:
    found: set[str] = set()

    def walk(v: Any) -> None:
        if isinstance(v, dict):
            if isinstance(v.get("Ref"), str) and not v["Ref"].startswith("AWS::"):
                found.add(v["Ref"])
            att = v.get("Fn::GetAtt")
            if isinstance(att, list) and att:
                found.add(att[0])
            sub = v.get("Fn::Sub")
            if sub is not None:
                text, variables = (sub, {}) if isinstance(sub, str) else (sub[0], sub[1])
                names = {n.split(".")[0] for n in re.findall(r"\$\{([^}!]+)\}", text)}
                found.update(names - set(variables))
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    walk(value)
    return {n for n in found if n not in present and not n.startswith("AWS::")}


def deploy(
    cloud: LocalCloud, sam_template: Path, deployment_zip: Path, *, stack_name: str = "lifeboat-dev"
) -> dict[str, str]:
    """Create the stack in the cloud's region; returns its outputs (key -> value)."""
    bucket = "lifeboat-deployment-artifacts"
    s3 = cloud.client("s3")
    if cloud.region == "us-east-1":
        s3.create_bucket(Bucket=bucket)
    else:
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": cloud.region})
    s3.put_object(Bucket=bucket, Key="deployment.zip", Body=deployment_zip.read_bytes())
    expanded = expand_sam(json.loads(sam_template.read_text()), bucket, "deployment.zip")
    machines: dict[str, Any] = {}
    invoke_configs: dict[str, Any] = {}
    template, dropped = adapt_for_moto(expanded, cloud.region, machines, invoke_configs)
    unexpected = dropped - MOTO_UNSUPPORTED
    if unexpected:
        raise AssertionError(
            f"moto cannot create {sorted(unexpected)}: adapt them in tests/infra/localdeploy.py"
        )
    s3.put_object(Bucket=bucket, Key="template.json", Body=json.dumps(template).encode())
    cfn = cloud.client("cloudformation")
    cfn.create_stack(
        StackName=stack_name,
        TemplateURL=f"https://{bucket}.s3.amazonaws.com/template.json",
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    if stack["StackStatus"] != "CREATE_COMPLETE":
        events = cfn.describe_stack_events(StackName=stack_name)["StackEvents"]
        raise AssertionError(f"stack {stack['StackStatus']}: {events[:5]}")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    put_invoke_configs(cloud, stack_name, invoke_configs)
    for logical_id, arn in create_state_machines(cloud, stack_name, machines).items():
        outputs[f"{logical_id}Arn"] = arn
    return outputs

"""What an AWS SDK call asks IAM for: the actions, the concrete resource ARNs, the condition keys it carries.

The actions come from AWS's Service Authorization Reference (localcloud/iam_data.py): an operation authorizes
the action the reference documents it with (`ListObjectsV2` -> `s3:ListBucket`, `GetBucketEncryption` ->
`s3:GetEncryptionConfiguration`), else the action of the same name. The reference documents a few operations
under no action, or as one action on one resource when AWS checks more; those are SUPPLEMENT below, each with
AWS's own statement of what it checks. The resource ARNs fill the reference's ARN formats with the call's
parameters (bucket and key, table, state machine or execution ARN, alarm names, hosted zone, endpoint, topic,
event bus...), per service, for the services Lifeboat calls.

Anything this module cannot map raises `Unmapped`: enforcement refuses to guess rather than let a call through
unchecked.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

from localcloud.iam_data import IamData, Service

PARTITION = "aws"
# Condition keys every request carries (or is known not to carry), set by the caller (localcloud/iam.py).
GLOBAL_KEYS = frozenset(
    {
        "aws:SecureTransport",
        "aws:RequestedRegion",
        "aws:PrincipalArn",
        "aws:PrincipalAccount",
        "aws:CalledVia",
        "aws:ViaAWSService",
    }
)


class Unmapped(LookupError):
    """A call the local cloud cannot turn into IAM authorizations (it cannot tell whether AWS allows it)."""


@dataclass(frozen=True)
class Authorization:
    """One question IAM answers for a call: may the caller perform `action` on `resource` with `context`?"""

    operation: str  # "S3.ListObjectsV2"
    action: str  # "s3:ListBucket"
    resource: str  # a concrete ARN, or "*" for actions without resource-level permissions
    context: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Keys whose value (or absence) this request determines; a policy condition on any other key cannot be
    # evaluated faithfully and fails loudly.
    known_keys: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Call:
    service_model: Any  # botocore.model.ServiceModel
    operation: str
    params: Mapping[str, Any]
    region: str
    account: str


@dataclass
class _Request:
    """What one part of a call names: resources by resource type (their ARN-format variables, or an ARN)."""

    resources: dict[str, Mapping[str, str] | str] | None  # None: the call names no resource ("*")
    context: dict[str, tuple[str, ...]] = field(default_factory=dict)
    known: frozenset[str] = frozenset()
    version_id: str | None = None  # S3: the request names an object version
    side: str = "target"  # CopyObject: "source" for the object copied from


@dataclass(frozen=True)
class _Needs:
    action: str  # action name in the call's service prefix
    side: str = "target"


# Operations whose authorization the reference does not document as "the action named after it, on the
# resource the call names". Each entry quotes what AWS checks (API reference, "Permissions" sections).
SUPPLEMENT: dict[tuple[str, str], tuple[_Needs, ...]] = {
    # "To use HEAD, you must have the s3:GetObject permission" (s3:GetObjectVersion with a versionId).
    ("s3", "HeadObject"): (_Needs("GetObject"),),
    # "To use this operation, you must have permissions to perform the s3:ListBucket action."
    ("s3", "HeadBucket"): (_Needs("ListBucket"),),
    # Multi-object delete: "s3:DeleteObject ... and s3:DeleteObjectVersion" for each key (with a versionId).
    ("s3", "DeleteObjects"): (_Needs("DeleteObject"),),
    # "You must have read access to the source object and write access to the destination bucket":
    # s3:GetObject (GetObjectVersion for a versioned source) and s3:PutObject; copying the tags (the default
    # TaggingDirective COPY) also needs s3:GetObjectTagging on the source and s3:PutObjectTagging.
    ("s3", "CopyObject"): (
        _Needs("GetObject", "source"),
        _Needs("GetObjectTagging", "source"),
        _Needs("PutObject"),
        _Needs("PutObjectTagging"),
    ),
    # "No permissions are required to perform this operation."
    ("sts", "GetCallerIdentity"): (),
}


def iam_prefix(call: Call, data: IamData) -> tuple[str, Service]:
    """The IAM service prefix of the call's service (CloudWatch -> cloudwatch, stepfunctions -> states)."""
    model = call.service_model
    candidates = [
        model.signing_name,
        model.endpoint_prefix,
        model.service_id.hyphenize(),
        model.service_name,
    ]
    for prefix in dict.fromkeys(c for c in candidates if c):
        service = data.service(prefix)
        if service is None:
            continue
        op = call.operation
        if op in service.operations or service.action(op) is not None or (prefix, op) in SUPPLEMENT:
            return prefix, service
    raise Unmapped(
        f"{model.service_name}.{call.operation}: the IAM reference has no service among {candidates} "
        "documenting this operation"
    )


def needed_actions(prefix: str, service: Service, operation: str) -> tuple[_Needs, ...]:
    """The actions an operation authorizes (before the S3 version rule), from the reference."""
    if (prefix, operation) in SUPPLEMENT:
        return SUPPLEMENT[(prefix, operation)]
    documented = service.operations.get(operation)
    if documented:
        names = set(documented)
        # S3 documents GetObject / DeleteObject ... under both the action and its *Version variant: which one
        # applies depends on the request (see _versioned).
        plain = {n for n in names if _versioned_name(n) != n and _versioned_name(n) in names}
        names -= {_versioned_name(n) for n in plain}
        if len(names) != 1:
            raise Unmapped(
                f"{prefix}:{operation}: the reference documents it under several actions "
                f"({', '.join(sorted(documented))}) and the local cloud cannot tell which one a call needs"
            )
        return (_Needs(names.pop()),)
    if service.action(operation) is not None:
        return (_Needs(operation),)
    raise Unmapped(f"{prefix}: no IAM action documents the {operation} operation")


def _versioned_name(action: str) -> str:
    return action.replace("Object", "ObjectVersion", 1)


def _versioned(prefix: str, service: Service, action: str, request: _Request) -> str:
    # S3: an object action on a named version is authorized as its *Version action (s3:GetObjectVersion,
    # s3:DeleteObjectVersion, s3:GetObjectVersionTagging...), when the reference has one.
    if prefix == "s3" and request.version_id and "Object" in action:
        candidate = _versioned_name(action)
        if service.action(candidate) is not None:
            return candidate
    return action


def authorizations(call: Call, data: IamData) -> list[Authorization]:
    """Every authorization AWS evaluates for `call` (all must be allowed)."""
    prefix, service = iam_prefix(call, data)
    needs = needed_actions(prefix, service, call.operation)
    if not needs:
        return []
    binder = BINDERS.get(prefix)
    if binder is None:
        raise Unmapped(
            f"{prefix}:{call.operation}: the local cloud builds no resource ARNs for {prefix} calls"
        )
    requests = binder(call)
    out: list[Authorization] = []
    operation = f"{call.service_model.service_id.replace(' ', '')}.{call.operation}"
    for need in needs:
        for request in requests:
            if request.side != need.side:
                continue
            name = _versioned(prefix, service, need.action, request)
            action = service.action(name)
            if action is None:
                raise Unmapped(f"{prefix}:{name} is not an action of the IAM reference")
            resource = _resource(call, service, action.resource_types, request, f"{prefix}:{name}")
            out.append(
                Authorization(
                    operation=operation,
                    action=action.qualified,
                    resource=resource,
                    context=dict(request.context),
                    known_keys=request.known | GLOBAL_KEYS,
                )
            )
    return out


_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9]+)\}")


def _fill(template: str, values: Mapping[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def _resource(call: Call, service: Service, types: tuple[str, ...], request: _Request, action: str) -> str:
    if not types or request.resources is None:
        return "*"
    for resource_type in types:
        given = request.resources.get(resource_type)
        if given is None:
            continue
        if isinstance(given, str):
            return given
        template = service.arn_formats.get(resource_type)
        if template is None:
            raise Unmapped(f"{action}: the reference has no ARN format for resource type {resource_type}")
        values: dict[str, str] = {"Partition": PARTITION, "Region": call.region, "Account": call.account}
        values.update({k: str(v) for k, v in given.items()})
        missing = [v for v in _PLACEHOLDER.findall(template) if v not in values]
        if missing:
            raise Unmapped(f"{action}: {resource_type} ARN {template} needs {', '.join(missing)}")
        return _fill(template, values)
    raise Unmapped(
        f"{action} ({call.operation}) applies to {', '.join(types)}; the call names "
        f"{', '.join(request.resources) or 'none of them'}"
    )


# -- binders: what a call names, per IAM service prefix --------------------------------------------------
def _require(call: Call, name: str) -> Any:
    value = call.params.get(name)
    if value in (None, "", []):
        raise Unmapped(
            f"{call.service_model.service_name}.{call.operation}: no {name} to build the resource from"
        )
    return value


def _s3(call: Call) -> list[_Request]:
    p = call.params
    if call.operation == "DeleteObjects":
        bucket = _require(call, "Bucket")
        return [
            _Request(
                {"object": {"BucketName": bucket, "ObjectName": o["Key"]}},
                version_id=o.get("VersionId"),
            )
            for o in p.get("Delete", {}).get("Objects", [])
        ]
    if "Bucket" not in p:
        return [_Request(None)]  # ListBuckets and the like
    bucket = p["Bucket"]
    resources: dict[str, Mapping[str, str] | str] = {"bucket": {"BucketName": bucket}}
    if p.get("Key") is not None:
        resources["object"] = {"BucketName": bucket, "ObjectName": p["Key"]}
    request = _Request(resources, version_id=p.get("VersionId"))
    if call.operation in ("ListObjectsV2", "ListObjects", "ListObjectVersions"):
        # s3:prefix, s3:delimiter and s3:max-keys are absent from the request context when not given.
        for key, param in (
            ("s3:prefix", "Prefix"),
            ("s3:delimiter", "Delimiter"),
            ("s3:max-keys", "MaxKeys"),
        ):
            if p.get(param) is not None:
                request.context[key] = (str(p[param]),)
        request.known = frozenset({"s3:prefix", "s3:delimiter", "s3:max-keys"})
    out = [request]
    if call.operation == "CopyObject":
        out.append(_copy_source(call, p.get("CopySource")))
    return out


def _copy_source(call: Call, source: Any) -> _Request:
    # CopySource: {"Bucket", "Key", "VersionId"} or "bucket/key?versionId=..." (URL-encoded key).
    if isinstance(source, Mapping):
        bucket, key, version = source.get("Bucket"), source.get("Key"), source.get("VersionId")
    elif isinstance(source, str):
        path, _, query = source.lstrip("/").partition("?")
        bucket, _, key = path.partition("/")
        key = unquote(key)
        versions = parse_qs(query).get("versionId") or []
        version = versions[0] if versions else None
    else:
        raise Unmapped(f"S3.{call.operation}: CopySource {source!r} is neither a dict nor a string")
    if not bucket or not key:
        raise Unmapped(f"S3.{call.operation}: CopySource {source!r} names no bucket and key")
    return _Request({"object": {"BucketName": bucket, "ObjectName": key}}, version_id=version, side="source")


def _dynamodb(call: Call) -> list[_Request]:
    table = call.params.get("TableName")
    if table is None:
        return [_Request(None)]  # ListTables, ListBackups...: no resource-level permission
    if str(table).startswith("arn:"):
        return [_Request({"table": table})]
    resources: dict[str, Mapping[str, str] | str] = {"table": {"TableName": table}}
    if call.params.get("IndexName"):
        resources = {"index": {"TableName": table, "IndexName": call.params["IndexName"]}}
    request = _Request(resources)
    leading = _leading_keys(call, str(table))
    if leading is not None:
        request.context["dynamodb:LeadingKeys"] = leading
        request.known = frozenset({"dynamodb:LeadingKeys"})
    return [request]


def _leading_keys(call: Call, table: str) -> tuple[str, ...] | None:
    """dynamodb:LeadingKeys of a single-item or query call: the partition key value(s) it names (None when
    the call names none the local cloud can read, so a policy conditioned on it fails loudly)."""
    p = call.params
    if call.operation in ("GetItem", "DeleteItem", "UpdateItem"):
        item = p.get("Key")
    elif call.operation == "PutItem":
        item = p.get("Item")
    elif call.operation == "Query":
        return _query_leading_key(call, table)
    else:
        return None
    hash_key = _hash_key_name(call, table)
    if not isinstance(item, Mapping) or hash_key is None or hash_key not in item:
        return None
    return (_scalar(item[hash_key]),)


def _query_leading_key(call: Call, table: str) -> tuple[str, ...] | None:
    p = call.params
    hash_key = _hash_key_name(call, table, p.get("IndexName"))
    expression = str(p.get("KeyConditionExpression") or "")
    names, values = p.get("ExpressionAttributeNames") or {}, p.get("ExpressionAttributeValues") or {}
    for left, placeholder in re.findall(r"(#?\w+)\s*=\s*(:\w+)", expression):
        attribute = names.get(left) if left.startswith("#") else left
        if attribute == hash_key and placeholder in values:
            return (_scalar(values[placeholder]),)
    return None


def _scalar(value: Any) -> str:
    """A DynamoDB attribute value ({"S": "x"}, {"N": "1"}, {"B": b"..."}) as the condition key compares it."""
    if isinstance(value, Mapping) and len(value) == 1:
        (inner,) = value.values()
        return inner.decode() if isinstance(inner, bytes) else str(inner)
    return str(value)


def _hash_key_name(call: Call, table: str, index: str | None = None) -> str | None:
    """The partition key attribute of `table` (or of its index), from the local cloud's own DynamoDB."""
    from moto.dynamodb.models import dynamodb_backends

    try:
        found = dynamodb_backends[call.account][call.region].get_table(table)
    except Exception:  # noqa: BLE001 - an unknown table: no leading key to give
        return None
    if index:
        for idx in [*found.global_indexes, *found.indexes]:
            if idx.name == index:
                return next((k["AttributeName"] for k in idx.schema if k["KeyType"] == "HASH"), None)
        return None
    return str(found.hash_key_attr)


def _states(call: Call) -> list[_Request]:
    p = call.params
    if p.get("executionArn"):
        return [_Request({"execution": p["executionArn"], "express": p["executionArn"]})]
    if p.get("stateMachineArn"):
        return [_Request({"statemachine": p["stateMachineArn"]})]
    return [_Request(None)]  # ListStateMachines; SendTask* (no resource-level permissions)


def _route53(call: Call) -> list[_Request]:
    p = call.params
    resources: dict[str, Mapping[str, str] | str] = {}
    if p.get("HostedZoneId"):
        resources["hostedzone"] = {"Id": str(p["HostedZoneId"]).split("/")[-1]}
    if p.get("HealthCheckId"):
        resources["healthcheck"] = {"Id": p["HealthCheckId"]}
    request = _Request(resources or None)
    if call.operation == "ChangeResourceRecordSets":
        changes = p.get("ChangeBatch", {}).get("Changes", [])
        sets = [c.get("ResourceRecordSet", {}) for c in changes]
        request.context = {
            "route53:ChangeResourceRecordSetsNormalizedRecordNames": tuple(
                dict.fromkeys(_normalized_record(s.get("Name", "")) for s in sets)
            ),
            "route53:ChangeResourceRecordSetsRecordTypes": tuple(
                dict.fromkeys(s.get("Type", "") for s in sets)
            ),
            "route53:ChangeResourceRecordSetsActions": tuple(
                dict.fromkeys(c.get("Action", "") for c in changes)
            ),
        }
        request.known = frozenset(request.context)
    return [request]


def _normalized_record(name: str) -> str:
    # Route 53's normalisation for the condition key: lower case, no trailing dot.
    return name.rstrip(".").lower()


def _cloudwatch(call: Call) -> list[_Request]:
    if call.operation == "DescribeAlarms":
        names = call.params.get("AlarmNames") or []
        if not names:
            raise Unmapped(
                "CloudWatch.DescribeAlarms without AlarmNames: the local cloud checks named alarms only"
            )
        return [_Request({"alarm": {"AlarmName": n}}) for n in names]
    if call.params.get("AlarmName"):
        return [_Request({"alarm": {"AlarmName": call.params["AlarmName"]}})]
    return [_Request(None)]


def _sns(call: Call) -> list[_Request]:
    return [_Request({"topic": _require(call, "TopicArn")})]


def _sagemaker(call: Call) -> list[_Request]:
    p = call.params
    resources: dict[str, Mapping[str, str] | str] = {}
    # SageMaker ARNs carry names in lower case.
    for param, resource_type, variable in (
        ("EndpointName", "endpoint", "EndpointName"),
        ("EndpointConfigName", "endpoint-config", "EndpointConfigName"),
        ("ModelName", "model", "ModelName"),
        ("ModelPackageGroupName", "model-package-group", "ModelPackageGroupName"),
    ):
        if p.get(param):
            resources[resource_type] = {variable: str(p[param]).lower()}
    if p.get("ModelPackageName"):
        name = str(p["ModelPackageName"])
        resources["model-package"] = name if name.startswith("arn:") else {"ModelPackageName": name.lower()}
    if call.operation.startswith("List"):
        return [_Request(None)]
    return [_Request(resources)]


def _events(call: Call) -> list[_Request]:
    if call.operation != "PutEvents":
        name = call.params.get("EventBusName") or "default"
        return [_Request({"event-bus": name if name.startswith("arn:") else {"EventBusName": name}})]
    out = []
    for entry in call.params.get("Entries", []):
        bus = entry.get("EventBusName") or "default"
        context: dict[str, tuple[str, ...]] = {
            "events:source": (str(entry.get("Source", "")),),
            "events:detail-type": (str(entry.get("DetailType", "")),),
        }
        out.append(
            _Request(
                {"event-bus": bus if bus.startswith("arn:") else {"EventBusName": bus}},
                context=context,
                known=frozenset({*context, "events:eventBusInvocation"}),
            )
        )
    return out


def _iam(call: Call) -> list[_Request]:
    arn = call.params.get("PolicySourceArn") or call.params.get("RoleArn")
    if not arn:
        raise Unmapped(f"IAM.{call.operation}: the local cloud checks calls on a named role or user only")
    kind = arn.split(":", 5)[-1].split("/", 1)[0]
    return [_Request({kind: arn})]


def _kms(call: Call) -> list[_Request]:
    key = str(_require(call, "KeyId"))
    if not key.startswith("arn:") or ":alias/" in key:
        raise Unmapped(f"KMS.{call.operation}: the local cloud checks calls naming a key ARN only, not {key}")
    # A direct call: no AWS service calls KMS on the caller's behalf, so kms:ViaService is absent.
    return [
        _Request(
            {"key": key},
            context={"kms:CallerAccount": (call.account,)},
            known=frozenset({"kms:ViaService", "kms:CallerAccount"}),
        )
    ]


ALLOW_OVERRIDES = "route53-recovery-cluster:AllowSafetyRulesOverrides"


def _arc_cluster(call: Call) -> list[_Request]:
    # Every routing control the call names; overriding a safety rule sets AllowSafetyRulesOverrides (absent
    # when the call overrides none, so a policy's BoolIfExists false allows it).
    p = call.params
    context: dict[str, tuple[str, ...]] = (
        {ALLOW_OVERRIDES: ("true",)} if p.get("SafetyRulesToOverride") else {}
    )
    known = frozenset({ALLOW_OVERRIDES})
    if call.operation == "UpdateRoutingControlStates":
        entries = p.get("UpdateRoutingControlStateEntries") or []
        return [
            _Request(
                {"routingcontrol": str(e.get("RoutingControlArn", ""))}, context=dict(context), known=known
            )
            for e in entries
        ]
    if p.get("RoutingControlArn"):
        return [_Request({"routingcontrol": p["RoutingControlArn"]}, context=context, known=known)]
    return [_Request(None)]  # ListRoutingControls


def _arc_config(call: Call) -> list[_Request]:
    # Plan validation's reads of the ARC configuration: each names the resource by its ARN.
    p = call.params
    for param, resource_type in (
        ("RoutingControlArn", "routingcontrol"),
        ("ControlPanelArn", "controlpanel"),
        ("ClusterArn", "cluster"),
    ):
        if p.get(param):
            return [_Request({resource_type: str(p[param])})]
    return [_Request(None)]  # ListClusters, ListControlPanels


BINDERS: dict[str, Callable[[Call], list[_Request]]] = {
    "route53-recovery-cluster": _arc_cluster,
    "route53-recovery-control-config": _arc_config,
    "s3": _s3,
    "dynamodb": _dynamodb,
    "states": _states,
    "route53": _route53,
    "cloudwatch": _cloudwatch,
    "sns": _sns,
    "sagemaker": _sagemaker,
    "events": _events,
    "iam": _iam,
    "kms": _kms,
}


def describe(auths: Iterable[Authorization]) -> list[str]:
    """One line per authorization, for messages and tests."""
    return [f"{a.action} on {a.resource}" for a in auths]

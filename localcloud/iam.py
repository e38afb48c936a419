"""IAM in the local cloud: every AWS call a Lifeboat handler makes is checked against its function's role.

moto does not enforce IAM. Here each function gets the role `infra.template.render` gives it for the stage and
region of its copy (the same merge template `make package` deploys, with the local cloud's topology: every
copy has every state machine of its plans) and the plans the local cloud has deployed (`deploy_plan`, called
by `localcloud.stack.provision_plan`). CloudFormation references in the policies are resolved to the local
cloud's resources (its bucket names, its account and regions).

A botocore hook on every client Lifeboat's factory builds (`chalicelib.adapters.aws.observe_clients`) turns
each call made inside a Lambda invocation (`lambda_runner.current_invocation`) into IAM authorizations
(localcloud/iam_actions.py) and evaluates them (localcloud/iam_policy.py). A call without a grant fails as in
AWS: a 403 AccessDenied (AccessDeniedException, AuthorizationError: the service's own code) whose message
names the role, the function, the action and the resource; every denial is also kept in `denials` for the
tests (tests/integration/conftest.py fails a test that met one it did not expect). Calls outside an
invocation (test setup, the local cloud's own simulators, the CLI) are not checked, nor calls of test apps
other than Lifeboat's.

LIFEBOAT_LOCAL_IAM: `enforce` (default), `log` (denials are recorded and logged, the call goes through: to
list every missing grant in one run) or `off`.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.awsrequest import AWSResponse

from localcloud import lambda_runner
from localcloud.iam_actions import GLOBAL_KEYS, Authorization, Call, Unmapped, authorizations
from localcloud.iam_data import IamData, shared
from localcloud.iam_policy import Decision, UnsupportedPolicy, evaluate
from localcloud.resources import API_FUNCTION, names

if TYPE_CHECKING:
    from chalicelib.models.plan import DRPlan
    from localcloud.server import LocalCloud

logger = logging.getLogger(__name__)

ENV_MODE = "LIFEBOAT_LOCAL_IAM"
MODES = ("enforce", "log", "off")
LIFEBOAT_APP = lambda_runner.APP_MODULE
_DENIAL = "lifeboat_iam_denial"
_MISSING = "lifeboat_iam_missing_object"
_IDENTITY = "lifeboat_iam_identity"
# S3 answers a read of a missing object 404 only to a caller allowed s3:ListBucket on the bucket, 403
# AccessDenied to anyone else (GetObject and HeadObject, "Permissions" in the S3 API reference).
_OBJECT_READS = ("GetObject", "HeadObject")


class IamSetupError(RuntimeError):
    """The roles of the local cloud cannot be derived from the template (the message says why)."""


def mode_from_env() -> str:
    mode = os.environ.get(ENV_MODE, "enforce").strip().lower() or "enforce"
    if mode not in MODES:
        raise IamSetupError(f"{ENV_MODE}={mode!r}: expected one of {', '.join(MODES)}")
    return mode


@dataclass(frozen=True)
class Role:
    name: str
    arn: str
    statements: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class Denial:
    function: str
    region: str
    role: str
    action: str
    resource: str
    operation: str
    explicit: bool = False
    context: tuple[tuple[str, tuple[str, ...]], ...] = ()  # the call's own condition keys

    @property
    def message(self) -> str:
        """AWS's message for an identity-based denial (the session of a Lambda role is the function name)."""
        account = self.role.split(":")[4]
        principal = f"arn:aws:sts::{account}:assumed-role/{self.role.rsplit('/', 1)[-1]}/{self.function}"
        why = (
            "with an explicit deny in an identity-based policy"
            if self.explicit
            else f"because no identity-based policy allows the {self.action} action"
        )
        what = f"{self.action} on resource: {self.resource}"
        return f"User: {principal} is not authorized to perform: {what} {why}"

    def __str__(self) -> str:
        keys = "".join(f", {k}={'|'.join(v)}" for k, v in self.context)
        return f"{self.function} ({self.region}): {self.action} on {self.resource} ({self.operation}{keys})"


@dataclass
class IamEnforcement:
    """The roles of one local cloud's functions, and the hook that checks their calls."""

    cloud: LocalCloud
    mode: str = "enforce"
    data: IamData | None = None
    denials: list[Denial] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # calls that could not be checked (they failed)

    def __post_init__(self) -> None:
        self._plans: dict[str, DRPlan] = {}
        self._roles: dict[str, dict[str, Role]] = {}  # region -> function name -> role
        self._lock = threading.RLock()
        self._stop_observing: Callable[[], None] | None = None
        # (role, region, action, resource, context) -> decision: handlers repeat the same calls
        self._decisions: dict[tuple[Any, ...], Decision] = {}

    # -- lifecycle -------------------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        return self.mode != "off" and self.cloud.handler_module == LIFEBOAT_APP

    def start(self) -> None:
        if not self.active:
            return
        if self.data is None:
            self.data = shared()  # fails now, naming the install command, when the data set is missing
        from chalicelib.adapters import aws

        self._stop_observing = aws.observe_clients(self.watch)

    def stop(self) -> None:
        if self._stop_observing is not None:
            self._stop_observing()
            self._stop_observing = None

    def deploy_plan(self, plan: DRPlan) -> None:
        """A plan's resources exist: the roles now grant what they grant for it (as a redeploy would)."""
        with self._lock:
            self._plans[plan.workload] = plan
            self._roles.clear()
            self._decisions.clear()

    # -- roles -----------------------------------------------------------------------------------------
    def role(self, function_name: str, region: str) -> Role:
        with self._lock:
            if region not in self._roles:
                self._roles[region] = self._render(region)
            roles = self._roles[region]
        found = roles.get(function_name)
        if found is None:
            raise IamSetupError(
                f"{function_name} ({region}) has no role in the rendered template (functions: "
                f"{', '.join(sorted(roles))})"
            )
        return found

    def _render(self, region: str) -> dict[str, Role]:
        from infra.template import Target, app_functions, plan_regions, render
        from localcloud.regional import CopyNames, copies

        if not self._plans:
            raise IamSetupError(
                "no plan is deployed in the local cloud, so no role can be rendered: "
                "provision_plan (localcloud.stack) first"
            )
        plans = tuple(self._plans.values())
        cloud = self.cloud
        regions = tuple(sorted({*plan_regions(plans), cloud.region, *copies(cloud)}))
        target = Target(
            stage=cloud.stage,
            region=region,
            home_region=cloud.region,
            regions=regions,
            machines_everywhere=True,
        )
        app = importlib.import_module(cloud.handler_module).app
        merge = render(app, plans, target)
        n = names(cloud.stage)
        buckets = (
            {"PlanBucket": n.plan_bucket, "EvidenceBucket": n.evidence_bucket}
            if region == cloud.region
            else {
                "PlanBucket": CopyNames(cloud.stage, region).plan_bucket,
                "EvidenceBucket": CopyNames(cloud.stage, region).evidence_bucket,
            }
        )
        resolver = Resolver(merge["Resources"], region=region, account=cloud.account_id, buckets=buckets)
        roles = {}
        for fn in app_functions(app):
            local_name = n.function(API_FUNCTION if fn.kind == "api" else fn.name)
            props = merge["Resources"][fn.role_id]["Properties"]
            statements = [
                resolver.resolve(statement)
                for policy in props.get("Policies", [])
                for statement in policy["PolicyDocument"]["Statement"]
            ]
            arn = f"arn:aws:iam::{cloud.account_id}:role/{props['RoleName']}"
            roles[local_name] = Role(name=props["RoleName"], arn=arn, statements=tuple(statements))
        return roles

    # -- the check -------------------------------------------------------------------------------------
    def watch(self, client: Any) -> None:
        """Check every call of `client` (a client Lifeboat's factory built)."""
        client.meta.events.register("before-parameter-build", self._before_parameters)
        client.meta.events.register("before-call", self._before_call)
        client.meta.events.register("after-call.s3", self._after_s3_call)

    def _before_parameters(
        self, params: Mapping[str, Any], model: Any, context: dict[str, Any], **_: Any
    ) -> None:
        invocation = lambda_runner.current_invocation()
        if invocation is None:
            return
        try:
            denial = self.check(invocation, model, params, context.get("client_region") or invocation.region)
        except (Unmapped, UnsupportedPolicy, IamSetupError) as exc:
            message = f"{invocation.function_name} ({invocation.region}) {model.service_model.service_name}."
            message += f"{model.name}: not checked: {exc}"
            with self._lock:
                self.errors.append(message)
            logger.error("local IAM: %s", message)
            raise
        if denial is not None and self.mode == "enforce":
            context[_DENIAL] = denial
        elif model.service_model.service_name == "sts" and model.name == "GetCallerIdentity":
            # In Lambda the caller is the function's role session (moto would answer its own test user).
            context[_IDENTITY] = (invocation, self.role(invocation.function_name, invocation.region))
        elif denial is None and model.service_model.service_name == "s3" and model.name in _OBJECT_READS:
            context[_MISSING] = (invocation, str(params.get("Bucket")), context.get("client_region"))

    def _before_call(self, model: Any, params: Mapping[str, Any], context: dict[str, Any], **_: Any) -> Any:
        identity = context.pop(_IDENTITY, None)
        if identity is not None:
            invocation, role = identity
            account = self.cloud.account_id
            answer = {
                "UserId": f"AROA{abs(hash(role.name)) % 10**16:016d}:{invocation.function_name}",
                "Account": account,
                "Arn": f"arn:aws:sts::{account}:assumed-role/{role.name}/{invocation.function_name}",
                "ResponseMetadata": {"HTTPStatusCode": 200, "HTTPHeaders": {}, "RetryAttempts": 0},
            }
            return AWSResponse(params.get("url", ""), 200, {}, _EmptyBody()), answer
        denial = context.pop(_DENIAL, None)
        if denial is None:
            return None
        code = error_code(model.service_model)
        parsed = {
            "Error": {"Code": code, "Message": denial.message, "Type": "Sender"},
            "ResponseMetadata": {"HTTPStatusCode": 403, "HTTPHeaders": {}, "RetryAttempts": 0},
        }
        return AWSResponse(params.get("url", ""), 403, {}, _EmptyBody()), parsed

    def _after_s3_call(
        self, http_response: Any, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any
    ) -> None:
        pending = context.pop(_MISSING, None)
        if pending is None or getattr(http_response, "status_code", 200) != 404:
            return
        invocation, bucket, region = pending
        role = self.role(invocation.function_name, invocation.region)
        region = region or invocation.region
        listing = Authorization(
            operation=f"S3.{model.name} (missing object)",
            action="s3:ListBucket",
            resource=f"arn:aws:s3:::{bucket}",
            known_keys=frozenset({"s3:prefix", "s3:delimiter", "s3:max-keys", *GLOBAL_KEYS}),
        )
        if evaluate(role.statements, _with_principal(listing, role, region, self.cloud.account_id)).allowed:
            return
        denial = self._record(invocation, role, listing, explicit=False)
        if self.mode == "enforce":
            parsed["Error"] = {"Code": "AccessDenied", "Message": denial.message}
            parsed.setdefault("ResponseMetadata", {})["HTTPStatusCode"] = 403

    def _record(
        self, invocation: lambda_runner.Invocation, role: Role, auth: Authorization, *, explicit: bool
    ) -> Denial:
        denial = Denial(
            function=invocation.function_name,
            region=invocation.region,
            role=role.arn,
            action=auth.action,
            resource=auth.resource,
            operation=auth.operation,
            explicit=explicit,
            context=tuple(sorted(auth.context.items())),
        )
        with self._lock:
            self.denials.append(denial)
        logger.warning("local IAM denied %s", denial)
        return denial

    def check(
        self, invocation: lambda_runner.Invocation, model: Any, params: Mapping[str, Any], region: str
    ) -> Denial | None:
        """The first authorization of the call its function's role does not allow (recorded), or None."""
        assert self.data is not None
        role = self.role(invocation.function_name, invocation.region)
        call = Call(
            service_model=model.service_model,
            operation=model.name,
            params=params,
            region=region,
            account=self.cloud.account_id,
        )
        for auth in authorizations(call, self.data):
            key = (role.arn, region, auth.action, auth.resource, tuple(sorted(auth.context.items())))
            decision = self._decisions.get(key)
            if decision is None:
                decision = evaluate(
                    role.statements, _with_principal(auth, role, region, self.cloud.account_id)
                )
                with self._lock:
                    self._decisions[key] = decision
            if not decision.allowed:
                return self._record(invocation, role, auth, explicit=decision.explicit_deny)
        return None

    @contextlib.contextmanager
    def expect_denials(self) -> Iterator[list[Denial]]:
        """Tests: the denials met inside the block are theirs to assert (the fixture lets them pass)."""
        with self._lock:
            start = len(self.denials)
        found: list[Denial] = []
        try:
            yield found
        finally:
            with self._lock:
                found.extend(self.denials[start:])
                del self.denials[start:]


class _EmptyBody(io.BytesIO):
    def stream(self, **_: Any) -> Iterator[bytes]:
        yield b""


def _with_principal(auth: Authorization, role: Role, region: str, account: str) -> Authorization:
    context = {
        **auth.context,
        "aws:SecureTransport": ("true",),  # Lambda calls AWS over TLS (the local cloud's HTTP stands in)
        "aws:RequestedRegion": (region,),
        "aws:PrincipalArn": (role.arn,),
        "aws:PrincipalAccount": (account,),
        "aws:ViaAWSService": ("false",),
    }
    return Authorization(
        operation=auth.operation,
        action=auth.action,
        resource=auth.resource,
        context=context,
        known_keys=auth.known_keys,
    )


def error_code(service_model: Any) -> str:
    """The error code the service answers an IAM denial with."""
    modeled = {shape.error_code for shape in service_model.error_shapes}
    for code in ("AuthorizationError", "AccessDenied", "AccessDeniedException"):
        if code in modeled:
            return code
    return (
        "AccessDenied" if service_model.protocol in ("query", "rest-xml", "ec2") else "AccessDeniedException"
    )


# -- CloudFormation references -> the local cloud's resources ------------------------------------------------
_SUB = re.compile(r"\$\{([^}!]+)\}")


@dataclass
class Resolver:
    """Resolves Ref / Fn::GetAtt / Fn::Sub / Fn::Join in a policy to the local cloud's names and ARNs."""

    resources: Mapping[str, Any]
    region: str
    account: str
    buckets: Mapping[str, str]  # logical id -> the local cloud's bucket name (its naming differs from AWS's)

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.attribute(logical_id, attribute)
            if key == "Fn::Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
                return self.sub(text, {k: self.resolve(v) for k, v in variables.items()})
            if key == "Fn::Join":
                separator, parts = arg
                return separator.join(str(self.resolve(p)) for p in parts)
            if key.startswith("Fn::"):
                raise IamSetupError(f"{key} in a role policy is not resolved by the local cloud")
        return {k: self.resolve(v) for k, v in value.items()}

    def sub(self, text: str, variables: Mapping[str, Any]) -> str:
        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if name.startswith("AWS::"):
                return str(self.ref(name))
            if "." in name:
                logical_id, attribute = name.split(".", 1)
                return str(self.attribute(logical_id, attribute))
            return str(self.ref(name))

        return _SUB.sub(one, text)

    def ref(self, name: str) -> str:
        pseudo = {
            "AWS::Partition": "aws",
            "AWS::AccountId": self.account,
            "AWS::Region": self.region,
            "AWS::URLSuffix": "amazonaws.com",
        }
        if name in pseudo:
            return pseudo[name]
        kind, props = self._resource(name)
        if name in self.buckets:
            return self.buckets[name]
        if kind == "AWS::SNS::Topic":
            return self.attribute(name, "TopicArn")
        if kind in ("AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable", "AWS::S3::Bucket"):
            return str(self.resolve(props.get("TableName") or props.get("BucketName")))
        raise IamSetupError(f"Ref {name} ({kind}) in a role policy is not resolved by the local cloud")

    def attribute(self, logical_id: str, attribute: str) -> str:
        kind, props = self._resource(logical_id)
        partition, region, account = "aws", self.region, self.account
        if logical_id in self.buckets and attribute == "Arn":
            return f"arn:{partition}:s3:::{self.buckets[logical_id]}"
        name = lambda key: str(self.resolve(props[key]))  # noqa: E731
        arns: dict[tuple[str, str], Callable[[], str]] = {
            ("AWS::S3::Bucket", "Arn"): lambda: f"arn:{partition}:s3:::{name('BucketName')}",
            ("AWS::DynamoDB::Table", "Arn"): lambda: (
                f"arn:{partition}:dynamodb:{region}:{account}:table/{name('TableName')}"
            ),
            ("AWS::DynamoDB::GlobalTable", "Arn"): lambda: (
                f"arn:{partition}:dynamodb:{region}:{account}:table/{name('TableName')}"
            ),
            (
                "AWS::SNS::Topic",
                "TopicArn",
            ): lambda: f"arn:{partition}:sns:{region}:{account}:{name('TopicName')}",
            ("AWS::SQS::Queue", "Arn"): lambda: f"arn:{partition}:sqs:{region}:{account}:{name('QueueName')}",
            # The local cloud has no such key: nothing Lifeboat calls directly names it.
            ("AWS::KMS::Key", "Arn"): lambda: f"arn:{partition}:kms:{region}:{account}:key/{logical_id}",
            ("AWS::Logs::LogGroup", "Arn"): lambda: (
                f"arn:{partition}:logs:{region}:{account}:log-group:{name('LogGroupName')}:*"
            ),
        }
        build = arns.get((kind, attribute))
        if build is None:
            raise IamSetupError(
                f"{logical_id}.{attribute} ({kind}) in a role policy is not resolved by the local cloud"
            )
        return build()

    def _resource(self, logical_id: str) -> tuple[str, Mapping[str, Any]]:
        body = self.resources.get(logical_id)
        if body is None or "Type" not in body:
            raise IamSetupError(f"{logical_id} is not a resource of the merge template")
        return body["Type"], body.get("Properties", {})


def describe_denials(denials: Sequence[Denial]) -> str:
    return "\n".join(f"  - {d}" for d in denials)

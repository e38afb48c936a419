"""Settings, the client factory and the plan stores: the plumbing every function relies on."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from chalicelib.adapters import aws
from chalicelib.adapters.aws import ClientFactory
from chalicelib.adapters.evidence import EvidenceStore
from chalicelib.adapters.plan_store import BrokenPlans, DirectoryPlanStore, UnknownWorkload
from chalicelib.services import deps
from chalicelib.settings import SettingsError, environment, load_settings

ROOT = Path(__file__).resolve().parents[2]
FULL_ENV = {
    "AWS_REGION": "us-east-1",
    "LIFEBOAT_LEDGER_TABLE": "l",
    "LIFEBOAT_LOCK_TABLE": "k",
    "LIFEBOAT_IDEMPOTENCY_TABLE": "i",
    "LIFEBOAT_PLAN_BUCKET": "p",
    "LIFEBOAT_EVIDENCE_BUCKET": "e",
}


def test_settings_name_every_missing_variable() -> None:
    # Given an environment without the ledger table and the region
    env = {k: v for k, v in FULL_ENV.items() if k not in ("LIFEBOAT_LEDGER_TABLE", "AWS_REGION")}
    # When the settings are loaded / Then the error names both variables
    with pytest.raises(SettingsError) as err:
        load_settings(env)
    assert "LIFEBOAT_LEDGER_TABLE is not set" in str(err.value)
    assert "AWS_REGION is not set" in str(err.value)


def test_settings_validate_values() -> None:
    with pytest.raises(SettingsError, match="LIFEBOAT_AWS_MAX_ATTEMPTS"):
        load_settings({**FULL_ENV, "LIFEBOAT_AWS_MAX_ATTEMPTS": "lots"})
    settings = load_settings({**FULL_ENV, "AWS_ENDPOINT_URL": "http://127.0.0.1:5000"})
    assert settings.endpoint_url == "http://127.0.0.1:5000" and settings.stage == "dev"


def test_factory_builds_one_client_per_service_and_region() -> None:
    # Given a factory (building a client opens no socket)
    factory = ClientFactory(region="us-east-1", endpoint_url="http://127.0.0.1:1")
    # Then the same (service, region) gives the same client and another region another one
    a = factory.client("s3")
    assert factory.client("s3") is a
    assert factory.client("s3", "us-west-2") is not a
    assert a.meta.endpoint_url == "http://127.0.0.1:1"
    assert a.meta.config.retries["mode"] == "adaptive"


def test_a_service_model_is_loaded_once_for_every_region(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a factory, and a count of the sessions built (each loads the service models it is asked for)
    import boto3

    built: list[object] = []
    real = boto3.session.Session

    def counting(*args: object, **kwargs: object) -> object:
        built.append(real(*args, **kwargs))  # type: ignore[arg-type]
        return built[-1]

    monkeypatch.setattr(boto3.session, "Session", counting)
    factory = ClientFactory(region="us-east-1", endpoint_url="http://127.0.0.1:1")
    # When clients of one service are built for two regions, and one of another endpoint
    east, west = factory.client("s3"), factory.client("s3", "us-west-2")
    factory.client_at("route53-recovery-cluster", "eu-west-1", "http://127.0.0.1:2")
    # Then they come from one session (S3's model read once), each still signed for its own region
    assert len(built) == 1
    assert (east.meta.region_name, west.meta.region_name) == ("us-east-1", "us-west-2")


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """FULL_ENV as the process environment; adapters, clients and settings forgotten before and after."""
    for name, value in FULL_ENV.items():
        monkeypatch.setenv(name, value)
    deps.reset()
    yield monkeypatch
    deps.reset()


def test_an_adapter_uses_the_client_it_was_handed_else_the_current_factorys(
    settings_env: pytest.MonkeyPatch,
) -> None:
    # Given settings pointing at one endpoint, an adapter handed a client and one handed none
    settings_env.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    handed = object()
    given, plain = EvidenceStore("e", s3=handed), EvidenceStore("e")
    # Then the first always uses its own, the second the factory's for the current settings
    assert given.s3 is handed
    assert plain.s3 is aws.client("s3")
    assert plain.s3.meta.endpoint_url == "http://127.0.0.1:1"
    # When the environment changes and the factory is reset (the local cloud, tests)
    settings_env.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:2")
    aws.reset()
    # Then the adapter reaches the new factory's client, and a region can be asked of it
    assert plain.s3.meta.endpoint_url == "http://127.0.0.1:2"
    assert EvidenceStore.s3.of(plain, "us-west-2").meta.region_name == "us-west-2"
    assert EvidenceStore.s3.of(given, "us-west-2") is handed


def test_a_copys_adapters_name_its_own_buckets_whenever_first_read(settings_env: pytest.MonkeyPatch) -> None:
    # Given the adapters of Lifeboat's copy in another region, built in that copy's environment
    with environment({"AWS_REGION": "us-west-2", "LIFEBOAT_EVIDENCE_BUCKET": "e-west"}):
        copy = deps.deps()
    # When a use case first reads its evidence stores after the context ended
    # Then they are the copy's buckets, not the process's own
    assert copy.evidence.bucket == "e-west" and copy.drill_evidence.bucket == "e-west"
    assert deps.deps().evidence.bucket == "e"


def test_importing_the_app_builds_no_aws_client() -> None:
    # Given a fresh interpreter in which creating any boto3 client raises
    probe = (
        "import boto3.session\n"
        "def refuse(*a, **k):\n"
        "    raise SystemExit('a boto3 client was built at import time')\n"
        "boto3.session.Session.client = refuse\n"
        "import app\n"
        "print(len(app.app.pure_lambda_functions))\n"
    )
    # When the app module is imported / Then it succeeds (no client, no settings read at import)
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, env={"PATH": ""}
    )
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.strip()) > 0


def test_directory_store_reads_plans_and_reports_every_broken_file(tmp_path: Path) -> None:
    # Given a folder with the example plan
    (tmp_path / "fraud.yaml").write_text((ROOT / "plans" / "fraud-scoring.yaml").read_text())
    store = DirectoryPlanStore(tmp_path)
    # Then it is found by workload, and an unknown workload says so
    assert store.get("fraud-scoring").regions.secondary == "us-west-2"
    with pytest.raises(UnknownWorkload, match="no DR plan for workload 'nope'"):
        store.get("nope")
    # When a broken plan joins it / Then listing fails with that file's problem, not silently
    (tmp_path / "broken.yaml").write_text("version: 1\nworkload: Bad_Name\n")
    with pytest.raises(BrokenPlans) as err:
        store.all()
    assert "broken.yaml" in str(err.value)


def test_an_injected_fault_reaches_a_client_built_after_the_clients_were_forgotten(
    settings_env: pytest.MonkeyPatch,
) -> None:
    # Given a fault on the replica region's listings (the local cloud's AwsFaults)
    from botocore.exceptions import ClientError

    from localcloud.faults import AwsFaults

    settings_env.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    settings_env.setenv("AWS_ACCESS_KEY_ID", "testing")
    settings_env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    faults = AwsFaults()
    rule = faults.add("s3", "ListObjectVersions", 5, status=403, code="AccessDenied", region="us-west-2")
    try:
        # When the clients are forgotten (the Lambda runner does it when a function's environment changes)
        # and the listing goes through a new client of the same factory
        aws.reset()
        s3 = aws.client("s3", "us-west-2")
        # Then the fault answers it, as it would have answered the old client
        with pytest.raises(ClientError) as raised:
            s3.list_object_versions(Bucket="replica")
        assert raised.value.response["Error"]["Code"] == "AccessDenied" and rule.hits == 1
    finally:
        faults.clear()
    # And once cleared, nothing more is hooked
    aws.reset()
    assert aws.client("s3", "us-west-2") not in faults._hooked

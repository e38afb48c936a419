"""The CLI's answers to what an operator can meet: one line and exit 2 for credentials, network and usage
problems (never a traceback), global flags after the subcommand, and no silent turn to AWS once the local
cloud is stopped."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from chalicelib.adapters.plan_store import UnknownWorkload
from lifeboat_cli import cloud as clouds
from lifeboat_cli.errors import explain
from lifeboat_cli.main import main, parser


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty working directory; os.environ restored afterwards (selecting a cloud sets it)."""
    monkeypatch.chdir(tmp_path)
    before = dict(os.environ)
    try:
        yield tmp_path
    finally:
        os.environ.clear()
        os.environ.update(before)
        from chalicelib.services import deps

        deps.reset()


def test_missing_credentials_are_a_usage_error_saying_what_to_do() -> None:
    # When the AWS SDK finds no credentials
    code, line = explain(NoCredentialsError(), "aws") or (0, "")
    # Then exit 2 with a line naming the ways to fix it
    assert code == 2
    assert line.startswith("no usable AWS credentials") and "lifeboat local up" in line


def test_an_unreachable_local_cloud_says_so_and_how_to_check_it() -> None:
    # When a call to the local cloud cannot connect
    code, line = explain(EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), "local") or (0, "")
    # Then exit 2, naming the local cloud and `lifeboat local status`
    assert code == 2
    assert line.startswith("cannot reach the local cloud") and "lifeboat local status" in line


def test_rejected_credentials_are_a_usage_error_and_other_errors_stay_bugs() -> None:
    # Given an expired token answer, an unknown workload and a plain bug
    expired = ClientError({"Error": {"Code": "ExpiredToken", "Message": "expired"}}, "Query")
    # Then the first two are one line and exit 2; the bug is not explained (it keeps its traceback)
    assert (explain(expired, "aws") or (0, ""))[0] == 2
    assert explain(UnknownWorkload("nope"), "aws") == (
        2,
        "no DR plan for workload 'nope' (`lifeboat status` lists the workloads)",
    )
    assert explain(ValueError("a bug"), "aws") is None


@pytest.mark.parametrize(
    "argv",
    [
        ["status", "fraud-scoring", "--json"],
        ["ledger", "fraud-scoring", "--json", "--cloud", "local"],
        ["executions", "--json"],
        ["watch", "some-execution", "--json", "--region", "us-west-2"],
    ],
)
def test_global_flags_are_accepted_after_the_subcommand(argv: list[str]) -> None:
    # When a global flag follows the subcommand, as the README writes `lifeboat status [WORKLOAD] [--json]`
    args = parser().parse_args(argv)
    # Then it means what it means before the subcommand
    assert args.json is True
    assert args.cloud == ("local" if "local" in argv else "auto")
    assert args.region == ("us-west-2" if "us-west-2" in argv else None)


def test_before_the_subcommand_the_global_flags_still_work_and_are_not_reset_by_it() -> None:
    # When --json and --cloud come first
    args = parser().parse_args(["--json", "--cloud", "aws", "status"])
    # Then the subcommand's copies (not given) do not reset them
    assert args.json is True and args.cloud == "aws"


def test_after_local_down_auto_does_not_turn_to_aws(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a directory whose local cloud was stopped with `lifeboat local down`
    (workdir / ".lifeboat").mkdir()
    clouds.STOPPED.write_text("stopped\n")
    # When a command runs without --cloud
    code = main(["status", "fraud-scoring"])
    # Then it exits 2 saying the local cloud was stopped and how to go on, instead of calling AWS
    assert code == 2
    err = capsys.readouterr().err
    assert "the local cloud was stopped" in err and "--cloud aws" in err and "lifeboat local up" in err


def test_with_cloud_aws_the_stopped_local_cloud_is_not_in_the_way(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a stopped local cloud here
    (workdir / ".lifeboat").mkdir()
    clouds.STOPPED.write_text("stopped\n")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    # When the operator names AWS
    chosen = clouds.select("aws", "dev")
    # Then AWS is selected
    assert chosen == "aws"


def test_a_local_cloud_whose_process_is_gone_is_named_not_called(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a state file left by a local cloud whose process has ended
    (workdir / ".lifeboat").mkdir()
    state = {"ready": True, "pid": 2**22 + 12345, "env": {"AWS_REGION": "us-east-1"}, "workloads": {}}
    (workdir / ".lifeboat" / "local.json").write_text(json.dumps(state))
    # When a command runs
    code = main(["ledger", "fraud-scoring"])
    # Then exit 2, naming the process and how to start it again
    assert code == 2
    assert f"its process {2**22 + 12345} is gone" in capsys.readouterr().err


def test_local_kill_of_an_unknown_workload_is_a_usage_error(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a running local cloud (this process stands in for it) with one workload
    (workdir / ".lifeboat").mkdir()
    state = {"ready": True, "pid": os.getpid(), "env": {}, "workloads": {"fraud-scoring": {}}}
    (workdir / ".lifeboat" / "local.json").write_text(json.dumps(state))
    # When the operator kills a model server of a workload it does not run
    code = main(["local", "kill", "nope", "primary"])
    # Then exit 2 naming the workloads it does run
    assert code == 2
    assert "no model servers for 'nope' (workloads: fraud-scoring)" in capsys.readouterr().err

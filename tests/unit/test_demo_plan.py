"""`lifeboat demo --plan`: the demo's local cloud loads exactly the plan asked for."""

from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib.models.planfile import load_plan_file
from lifeboat_cli.cloud import CliError
from lifeboat_cli.demo import demo_plans
from localcloud.daemon import endpoint_label

PLANS = Path(__file__).resolve().parents[2] / "plans"


@pytest.mark.parametrize(
    ("name", "workload"),
    [("fraud-scoring.yaml", "fraud-scoring"), ("fraud-scoring-sagemaker.yaml", "fraud-scoring-sagemaker")],
)
def test_the_demo_folder_holds_only_the_chosen_plan(tmp_path: Path, name: str, workload: str) -> None:
    # Given a demo folder left from an earlier demo of the other plan
    folder = tmp_path / "demo-plans"
    folder.mkdir()
    (folder / "stale.yaml").write_text("left over")
    # When the demo prepares the plan asked for
    prepared, found = demo_plans(PLANS / name, folder)
    # Then the local cloud will load that plan and nothing else, and the demo knows its workload
    assert prepared == folder and found == workload
    assert [p.name for p in folder.iterdir()] == [name]


def test_a_plan_that_is_not_valid_is_refused_naming_the_file(tmp_path: Path) -> None:
    # Given a file that is not a plan
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: 1\nworkload: x\n")
    # Then the demo refuses it before starting anything
    with pytest.raises(CliError, match="broken.yaml"):
        demo_plans(broken, tmp_path / "demo-plans")
    assert not (tmp_path / "demo-plans").exists()


def test_the_local_cloud_names_sagemaker_endpoints_by_endpoint_and_variant() -> None:
    # Given the SageMaker example plan
    plan = load_plan_file(PLANS / "fraud-scoring-sagemaker.yaml")
    # Then each role's model server is shown as the SageMaker variant it serves
    assert endpoint_label(plan, "primary") == "SageMaker fraud-scorer/AllTraffic (us-east-1)"
    assert endpoint_label(plan, "secondary") == "SageMaker fraud-scorer/AllTraffic (us-west-2)"

"""Safety rules of traffic shifts."""

from chalicelib.domain.safety import check_shift


def test_never_zero_weight_everywhere() -> None:
    # Given a shift that would give nobody traffic / Then it is refused
    verdict = check_shift({"primary": 0, "secondary": 0}, {"primary": True, "secondary": True})
    assert not verdict.allowed and "zero weight" in verdict.reason


def test_never_all_traffic_to_a_target_that_failed_its_smoke_test() -> None:
    # Given the secondary failed its last smoke test / When all traffic would go to it / Then refused
    verdict = check_shift({"primary": 0, "secondary": 100}, {"primary": False, "secondary": False})
    assert not verdict.allowed and "secondary" in verdict.reason


def test_partial_weight_to_an_unhealthy_target_is_allowed() -> None:
    # Given a failback step that keeps the healthy side serving / Then it is allowed (gates watch it)
    assert check_shift({"primary": 10, "secondary": 90}, {"primary": False, "secondary": True}).allowed


def test_all_traffic_to_a_healthy_target_is_allowed() -> None:
    assert check_shift({"primary": 0, "secondary": 100}, {"secondary": True}).allowed


def test_out_of_range_weights_are_refused() -> None:
    assert not check_shift({"primary": -1, "secondary": 101}, {}).allowed

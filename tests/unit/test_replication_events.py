"""S3 replication event notifications: parsing SQS bodies (real shapes, URL-encoded keys, malformed input)
and what each failure reason means for recovery."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.replication_events import (
    EVENT_KINDS,
    decode_key,
    failure_reason,
    not_retryable_reasons,
    parse_body,
)
from chalicelib.services.replication_events import find_asset
from chalicelib.settings import replication_queue_name
from localcloud.replication import encode_key, notification_record
from localcloud.resources import names

EVENTS = Path(__file__).resolve().parents[2] / "events"
ROOT = EVENTS.parent
WHEN = datetime(2024, 9, 5, 21, 4, 32, tzinfo=UTC)


def fixture(name: str) -> str:
    return (EVENTS / name).read_text()


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("s3/replication-operation-failed.json", "failed"),
        ("s3/replication-missed-threshold.json", "missed-threshold"),
        ("s3/replication-after-threshold.json", "replicated-after-threshold"),
        ("s3/replication-not-tracked.json", "not-tracked"),
    ],
)
def test_each_replication_event_fixture_parses(name: str, kind: str) -> None:
    # Given the documented (or derived) message / When parsed / Then it is one record of that kind
    parsed = parse_body(fixture(name))
    assert parsed.kind == "records" and not parsed.problems
    (notice,) = parsed.notices
    assert notice.kind == kind
    assert (notice.bucket, notice.key) == ("amzn-s3-demo-bucket1", "replication-object-put-test.png")
    assert notice.destination_bucket == "amzn-s3-demo-bucket2"
    assert notice.version_id == "abcdeH0Xp66ep__QDjR76LK7Gc9X4wKO"


def test_the_failed_replication_fixture_names_its_reason_and_time() -> None:
    (notice,) = parse_body(fixture("s3/replication-operation-failed.json")).notices
    assert notice.failure_reason == "AssumeRoleNotPermitted"
    assert notice.request_time == datetime(2024, 9, 5, 21, 3, 59, 168000, tzinfo=UTC)
    assert notice.operation == "OBJECT_PUT"


def test_the_after_threshold_fixture_gives_the_replication_lag() -> None:
    (notice,) = parse_body(fixture("s3/replication-after-threshold.json")).notices
    replicated = notice.replicated_at()
    assert replicated is not None and notice.request_time is not None
    assert (replicated - notice.request_time).total_seconds() > 15 * 60


def test_the_sqs_fixture_body_is_the_s3_message() -> None:
    record = json.loads(fixture("sqs/s3-notification-via-sqs.json"))["Records"][0]
    assert parse_body(record["body"]).notices[0].kind == "failed"


def test_the_s3_test_event_is_acknowledged_not_an_error() -> None:
    parsed = parse_body(fixture("s3/test-event.json"))
    assert (parsed.kind, parsed.bucket, parsed.problems) == ("test", "bucketname", [])


def test_a_notification_wrapped_by_sns_is_unwrapped() -> None:
    envelope = json.dumps(
        {"Type": "Notification", "Message": fixture("s3/replication-operation-failed.json")}
    )
    assert parse_body(envelope).notices[0].kind == "failed"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("not json {", "not JSON"),
        ("", "empty message body"),
        ("[1, 2]", "JSON list"),
        ('{"Records": []}', "Records is empty"),
        ('{"hello": 1}', "no Records list"),
        ('{"Records": [{"eventName": "ObjectCreated:Put", "s3": {}}]}', "unknown event name"),
        ('{"Records": ["x"]}', "must be an object"),
    ],
)
def test_malformed_notifications_are_reported_not_guessed(body: str, problem: str) -> None:
    parsed = parse_body(body)
    assert parsed.kind == "malformed"
    assert problem in " ".join(parsed.problems)


def test_one_bad_record_does_not_hide_the_good_ones() -> None:
    # Given a notification with a valid record and one without a key
    good = json.loads(fixture("s3/replication-operation-failed.json"))["Records"][0]
    bad = json.loads(json.dumps(good))
    del bad["s3"]["object"]["key"]
    parsed = parse_body(json.dumps({"Records": [good, bad]}))
    # Then the good one is parsed and the bad one reported by position
    assert parsed.kind == "malformed" and len(parsed.notices) == 1
    assert parsed.problems == ["record 1: s3.object.key is missing"]


def failed_record(**changes: object) -> dict:
    """The documented failed-replication record, with `changes` applied (dotted paths; None deletes)."""
    record = json.loads(fixture("s3/replication-operation-failed.json"))["Records"][0]
    for path, value in changes.items():
        *parents, last = path.split("__")
        node = record
        for part in parents:
            node = node[part]
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    return record


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"s3__object__size": -1}, "s3.object.size must be a whole number of bytes >= 0"),
        ({"s3__object__size": 1.5}, "s3.object.size"),
        ({"s3__object__size": "520080"}, "s3.object.size"),
        ({"s3__object__size": True}, "s3.object.size"),
        ({"replicationEventData": None}, "replicationEventData is missing"),
        ({"replicationEventData": {}}, "replicationEventData is missing"),
        ({"replicationEventData": "AssumeRoleNotPermitted"}, "replicationEventData is missing"),
        ({"replicationEventData__failureReason": None}, "failureReason is missing"),
        ({"replicationEventData__failureReason": "  "}, "failureReason is missing"),
        ({"replicationEventData__failureReason": 42}, "failureReason is missing"),
        ({"s3__object__versionId": 7}, "s3.object.versionId must be text"),
        ({"replicationEventData__s3Operation": ["OBJECT_PUT"]}, "s3Operation must be text"),
        ({"awsRegion": {"x": 1}}, "awsRegion must be text"),
    ],
)
def test_values_s3_never_sends_are_malformed(changes: dict, problem: str) -> None:
    # Given the documented failed replication with one value S3 would never send
    parsed = parse_body(json.dumps({"Records": [failed_record(**changes)]}))
    # Then the record is malformed (so nothing acts on it, no re-drive) and the problem names the field
    assert parsed.kind == "malformed" and parsed.notices == []
    assert problem in parsed.problems[0], parsed.problems
    # And its bucket is still known, to say whose message it was
    assert parsed.malformed_buckets == ["amzn-s3-demo-bucket1"]


@pytest.mark.parametrize("name", ["s3/replication-missed-threshold.json", "s3/replication-not-tracked.json"])
def test_events_other_than_failures_need_no_failure_reason(name: str) -> None:
    parsed = parse_body(fixture(name))
    assert parsed.kind == "records" and parsed.notices[0].failure_reason is None


def test_keys_are_decoded_like_html_forms() -> None:
    assert decode_key("red+flower.jpg") == "red flower.jpg"
    assert decode_key("a%2Bb/%C3%A9t%C3%A9+2024.csv") == "a+b/été 2024.csv"
    with pytest.raises(UnicodeDecodeError):
        decode_key("bad%FFkey")


def test_a_key_that_is_not_utf8_once_decoded_is_malformed() -> None:
    record = json.loads(fixture("s3/replication-operation-failed.json"))
    record["Records"][0]["s3"]["object"]["key"] = "bad%FFkey"
    parsed = parse_body(json.dumps(record))
    assert parsed.kind == "malformed" and "not URL-encoded UTF-8" in parsed.problems[0]


S3_KEYS = st.text(
    alphabet=st.one_of(
        st.sampled_from(list(" +%/=&?#é日本🐍-_.~'\"")),
        st.characters(min_codepoint=32, max_codepoint=0x2FFFF),
    ),
    min_size=1,
    max_size=40,
).filter(lambda k: not any(0xD800 <= ord(c) <= 0xDFFF for c in k))


@given(S3_KEYS, st.sampled_from(sorted(EVENT_KINDS)))
def test_any_key_survives_s3s_encoding(key: str, event: str) -> None:
    # Given a notification record built the way S3 encodes keys (spaces as '+', UTF-8 %-escapes)
    record = notification_record(
        event,
        bucket="src",
        key=key,
        size=3,
        etag="e",
        version_id="v1",
        region="us-east-1",
        account="123456789012",
        destination_bucket="dst",
        rule_id="r",
        request_time=WHEN,
        event_time=WHEN,
        failure_reason="DstKmsKeyNotFound" if event.endswith("FailedReplication") else None,
    )
    assert " " not in record["s3"]["object"]["key"]
    # When the SQS body is parsed / Then the object's real key comes back, whatever it contained
    (notice,) = parse_body(json.dumps({"Records": [record]})).notices
    assert notice.key == key
    assert notice.kind == EVENT_KINDS[event]
    assert encode_key(key) == notice.raw_key


@given(st.one_of(st.text(max_size=200), st.binary(max_size=200).map(lambda b: b.decode("latin-1"))))
def test_parsing_never_raises_on_garbage(body: str) -> None:
    parsed = parse_body(body)
    assert parsed.kind in ("test", "records", "malformed")


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
        max_leaves=10,
    )
)
def test_parsing_never_raises_on_arbitrary_json(doc: object) -> None:
    parsed = parse_body(json.dumps({"Records": [doc]}))
    assert parsed.kind == "malformed" or parsed.notices


# -- failure reasons ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "code", ["DstBucketNotFound", "AssumeRoleNotPermitted", "DstKmsKeyNotFound", "DstBucketUnversioned"]
)
def test_configuration_failures_cannot_be_fixed_by_a_retry(code: str) -> None:
    reason = failure_reason(code)
    assert not reason.retry_fixes and reason.action
    assert code in not_retryable_reasons()


def test_lifeboat_copies_what_its_own_role_can_fix_but_never_replays_deletes_or_broken_destinations() -> None:
    assert failure_reason("AssumeRoleNotPermitted").redrive  # S3's role is broken, Lifeboat's is not
    assert failure_reason("SrcGetObjectNotPermitted").redrive
    assert not failure_reason("DstKmsKeyNotFound").redrive  # would land without the required key
    assert not failure_reason("DstBucketNotFound").redrive
    assert not failure_reason("DstDelObjNotPermitted").redrive  # deletes are never re-driven
    assert not failure_reason("SrcObjectNotEligible").redrive


def test_an_unknown_failure_reason_is_assumed_retryable() -> None:
    reason = failure_reason("SomethingNewFromS3")
    assert reason.retry_fixes and reason.redrive and reason.code == "SomethingNewFromS3"


# -- wiring ---------------------------------------------------------------------------------------------
def test_the_handler_queue_name_follows_the_stage_like_every_other_resource() -> None:
    # Given the stages of .chalice/config.json
    stages = json.loads((ROOT / ".chalice" / "config.json").read_text())["stages"]
    for stage, config in stages.items():
        env = config["environment_variables"]
        # Then the name Chalice registers is the queue the stage provisions
        assert (
            replication_queue_name(env)
            == names(stage).replication_queue
            == f"lifeboat-{stage}-replication-events"
        )
    assert replication_queue_name({}) == "lifeboat-dev-replication-events"


def test_events_are_matched_to_the_asset_with_the_longest_source_prefix() -> None:
    from chalicelib.models.planfile import load_plan_file

    plan = load_plan_file(ROOT / "plans" / "fraud-scoring.yaml")
    found = find_asset([plan], "fraud-models-use1", "registry/fraud-scorer.json")
    assert found is not None and found[1].name == "fraud-model"
    found = find_asset([plan], "fraud-models-use1", "models/fraud-scorer/1.0.0/model.json")
    assert found is not None and found[1].name == "model-artifacts"
    assert find_asset([plan], "fraud-models-use1", "other/x") is None
    assert find_asset([plan], "some-other-bucket", "models/x") is None

"""The demo fraud scorer: deterministic training, useful quality, exact golden cases, strict input checks."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from localcloud.model import (
    FEATURE_NAMES,
    ModelArtifact,
    auc_score,
    default_artifact,
    golden_cases,
    make_training_data,
    predict,
    train,
)

TRAINED_AT = "2025-01-01T00:00:00+00:00"
LEGIT = {"amount": 42.0, "merchant_risk": 0.15, "foreign": 0, "night": 0, "velocity": 1}


@pytest.fixture(scope="module")
def artifact() -> ModelArtifact:
    return default_artifact()


def test_training_is_deterministic():
    # Given the same data and seed twice
    first = train(make_training_data(seed=7), trained_at=TRAINED_AT)
    second = train(make_training_data(seed=7), trained_at=TRAINED_AT)

    # When both are serialised
    # Then they are byte-identical, so a redeployed model keeps its SHA-256
    assert first.to_json_bytes() == second.to_json_bytes()
    assert first.sha256() == second.sha256()


def test_a_different_seed_gives_a_different_model():
    # Given two data sets drawn with different seeds
    # When a model is trained on each
    a = train(make_training_data(seed=7), trained_at=TRAINED_AT)
    b = train(make_training_data(seed=8), trained_at=TRAINED_AT)

    # Then the artifacts differ, so the hash really identifies the model
    assert a.sha256() != b.sha256()


def test_model_is_useful_on_held_out_data(artifact):
    # Given the default artifact
    # When its held-out metrics are read
    metrics = artifact.metrics

    # Then it separates fraud from legit well on rows it never trained on
    assert metrics.auc > 0.85
    assert metrics.accuracy > 0.85
    assert metrics.holdout_rows == 500
    assert 0.05 < metrics.fraud_rate < 0.3


def test_synthetic_data_follows_the_stated_risk_factors():
    # Given the default synthetic data
    rows = make_training_data()

    def fraud_rate(selected):
        return sum(r.is_fraud for r in selected) / len(selected)

    # When fraud rates are compared between risky and safe groups
    # Then each risk factor raises the rate
    assert fraud_rate([r for r in rows if r.foreign]) > fraud_rate([r for r in rows if not r.foreign])
    assert fraud_rate([r for r in rows if r.night]) > fraud_rate([r for r in rows if not r.night])
    assert fraud_rate([r for r in rows if r.merchant_risk > 0.5]) > fraud_rate(
        [r for r in rows if r.merchant_risk < 0.2]
    )
    assert fraud_rate([r for r in rows if r.velocity >= 3]) > fraud_rate([r for r in rows if r.velocity == 0])


def test_golden_cases_cover_the_four_kinds(artifact):
    # Given the golden cases of the default artifact
    cases = {case["name"]: case for case in golden_cases(artifact)}

    # When their expectations are read
    # Then there is a clear fraud, a clear legit, a borderline and a fraud-labelled case
    assert set(cases) == {"clear-fraud", "clear-legit", "borderline", "fraud"}
    assert cases["clear-fraud"]["expected"]["score"] > 0.9
    assert cases["clear-fraud"]["expected"]["label"] == "fraud"
    assert cases["clear-legit"]["expected"]["score"] < 0.1
    assert cases["clear-legit"]["expected"]["label"] == "legit"
    assert 0.35 < cases["borderline"]["expected"]["score"] < 0.65
    assert cases["fraud"]["expected"]["label"] == "fraud"


def test_golden_cases_are_exactly_what_predict_returns(artifact):
    # Given the golden cases
    for case in golden_cases(artifact):
        # When each payload is scored
        result = predict(artifact, case["payload"]["features"])

        # Then the output is exactly the stated expectation, hash and version included
        assert result == case["expected"]
        assert result["model_sha256"] == artifact.sha256()
        assert set(case["payload"]) == {"features"}
        assert list(case["payload"]["features"]) == list(FEATURE_NAMES)


def test_default_golden_scores_are_pinned(artifact):
    # Given the default artifact, whose golden cases are copied into plans/fraud-scoring.yaml
    # When they are computed
    got = {c["name"]: (c["expected"]["score"], c["expected"]["label"]) for c in golden_cases(artifact)}

    # Then they have not drifted (a change here means the DR plan's golden cases must be updated too)
    assert got == {
        "clear-fraud": (0.994437, "fraud"),
        "clear-legit": (0.00552, "legit"),
        "borderline": (0.465964, "legit"),
        "fraud": (0.754126, "fraud"),
    }


@pytest.mark.parametrize(
    ("features", "message"),
    [
        ({k: v for k, v in LEGIT.items() if k != "velocity"}, "missing feature(s): velocity"),
        ({**LEGIT, "country": 1}, "unexpected feature(s): country"),
        ({**LEGIT, "amount": "42"}, "feature 'amount' must be a finite number"),
        ({**LEGIT, "amount": None}, "feature 'amount' must be a finite number"),
        ({**LEGIT, "night": True}, "feature 'night' must be a finite number"),
        ({**LEGIT, "velocity": float("nan")}, "feature 'velocity' must be a finite number"),
        ({**LEGIT, "amount": 10**400}, "feature 'amount' must be a finite number"),
        ({**LEGIT, "foreign": 2}, "feature 'foreign' must be 0 or 1"),
        ({**LEGIT, "merchant_risk": 1.5}, "feature 'merchant_risk' must be between 0 and 1"),
        ({**LEGIT, "amount": -5}, "feature 'amount' must be >= 0"),
        ([1, 2, 3], "features must be an object"),
    ],
)
def test_predict_rejects_bad_features_with_a_clear_message(artifact, features, message):
    # Given a malformed feature set
    # When it is scored
    # Then a ValueError names the offending feature
    with pytest.raises(ValueError) as excinfo:
        predict(artifact, features)
    assert message in str(excinfo.value)


def test_predict_reports_every_problem_at_once(artifact):
    # Given features with several problems
    features = {"amount": "x", "merchant_risk": 0.2, "foreign": 0, "zip": 1}

    # When scored
    with pytest.raises(ValueError) as excinfo:
        predict(artifact, features)

    # Then the caller learns about all of them in one round trip
    text = str(excinfo.value)
    assert "missing feature(s): night, velocity" in text
    assert "unexpected feature(s): zip" in text
    assert "'amount'" in text


def test_predict_accepts_integers_for_every_feature(artifact):
    # Given a payload written with integers only
    # When scored
    result = predict(artifact, {"amount": 42, "merchant_risk": 0, "foreign": 0, "night": 0, "velocity": 1})

    # Then it is scored like the float version would be
    assert result["label"] == "legit"
    assert 0 <= result["score"] <= 1


def test_json_round_trip_is_exact_and_canonical(artifact):
    # Given the artifact as JSON bytes
    data = artifact.to_json_bytes()

    # When parsed back
    restored = ModelArtifact.from_json_bytes(data)

    # Then nothing changed, and the bytes are canonical (sorted keys, no whitespace)
    assert restored == artifact
    assert restored.sha256() == artifact.sha256()
    assert restored.to_json_bytes() == data
    assert data == json.dumps(json.loads(data), sort_keys=True, separators=(",", ":")).encode()
    assert predict(restored, LEGIT) == predict(artifact, LEGIT)


def test_corrupt_artifact_json_is_rejected(artifact):
    # Given an artifact whose weights lost an entry
    document = json.loads(artifact.to_json_bytes())
    document["weights"] = document["weights"][:-1]

    # When it is loaded
    # Then loading fails instead of serving a broken model
    with pytest.raises(ValidationError, match="weights must have 5 entries"):
        ModelArtifact.from_json_bytes(json.dumps(document).encode())


def test_auc_of_known_orderings():
    # Given perfect, inverted and uninformative scores
    # When the AUC is computed
    # Then it is 1, 0 and 0.5
    assert auc_score([False, False, True, True], [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert auc_score([True, True, False, False], [0.1, 0.2, 0.8, 0.9]) == 0.0
    assert auc_score([True, False, True, False], [0.5, 0.5, 0.5, 0.5]) == 0.5


features_strategy = st.fixed_dictionaries(
    {
        "amount": st.floats(min_value=0, max_value=50_000),
        "merchant_risk": st.floats(min_value=0, max_value=1),
        "foreign": st.sampled_from([0, 1]),
        "night": st.sampled_from([0, 1]),
        "velocity": st.floats(min_value=0, max_value=40),
    }
)


@settings(max_examples=200, deadline=None)
@given(features=features_strategy, feature=st.sampled_from(FEATURE_NAMES), bump=st.floats(0.01, 1))
def test_a_riskier_transaction_never_scores_lower(artifact, features, feature, bump):
    # Given any valid transaction
    riskier = dict(features)
    # When one risk factor increases (staying in its valid range)
    if feature in ("foreign", "night"):
        riskier[feature] = 1
    elif feature == "merchant_risk":
        riskier[feature] = min(1.0, features[feature] + bump)
    else:
        riskier[feature] = features[feature] + bump * 100

    # Then the score is a probability and does not drop
    before, after = predict(artifact, features), predict(artifact, riskier)
    assert 0 <= before["score"] <= 1
    assert after["score"] >= before["score"]
    assert before["label"] == ("fraud" if before["score"] >= artifact.threshold else "legit")

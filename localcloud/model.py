"""The demo inference model: a small, genuinely trained logistic-regression fraud scorer.

Pure standard library (no numpy) and deterministic, so every run of the local cloud serves byte-identical
artifacts with the same SHA-256, and golden test cases stay exact.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MODEL_NAME = "fraud-scorer"
MODEL_VERSION = "1.0.0"
FEATURE_NAMES: tuple[str, ...] = ("amount", "merchant_risk", "foreign", "night", "velocity")
# A fixed training timestamp so everyone who builds the default artifact gets the same bytes and SHA-256.
DEFAULT_TRAINED_AT = "2025-01-01T00:00:00+00:00"

_BINARY_FEATURES = frozenset({"foreign", "night"})
# Weights are rounded before they are stored so the artifact is readable and the JSON does not depend on
# the last bits of float accumulation.
_WEIGHT_DECIMALS = 10


class Transaction(BaseModel):
    """One labelled synthetic card transaction."""

    model_config = ConfigDict(frozen=True)

    amount: float = Field(ge=0, description="Transaction amount in dollars.")
    merchant_risk: float = Field(ge=0, le=1, description="Risk score of the merchant, 0 (safe) to 1.")
    foreign: int = Field(ge=0, le=1, description="1 if the card is used outside its home country.")
    night: int = Field(ge=0, le=1, description="1 if the transaction happened between 00:00 and 06:00.")
    velocity: float = Field(ge=0, description="Transactions on this card in the last hour.")
    is_fraud: bool = Field(description="Ground-truth label.")

    def features(self) -> dict[str, float]:
        return {name: float(getattr(self, name)) for name in FEATURE_NAMES}


class TrainingMetrics(BaseModel):
    """Quality of the trained model, measured on a held-out split it never saw."""

    model_config = ConfigDict(frozen=True)

    accuracy: float = Field(description="Share of held-out rows classified correctly at the threshold.")
    auc: float = Field(description="Area under the ROC curve on the held-out rows.")
    train_rows: int = Field(description="Rows used for gradient descent.")
    holdout_rows: int = Field(description="Rows used only for the metrics above.")
    fraud_rate: float = Field(description="Share of fraudulent rows in the whole data set.")


class ModelArtifact(BaseModel):
    """Everything a model server needs to score a transaction, serialisable to canonical JSON."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model_name: str = Field(default=MODEL_NAME, description="Name of the model.")
    version: str = Field(default=MODEL_VERSION, description="Semantic version of the model.")
    feature_names: list[str] = Field(description="Input features, in the order of `weights`.")
    amount_transform: Literal["log1p"] = Field(
        default="log1p", description="Applied to amount before scaling."
    )
    feature_means: list[float] = Field(description="Training means of the transformed features.")
    feature_scales: list[float] = Field(
        description="Training standard deviations of the transformed features."
    )
    weights: list[float] = Field(description="Logistic-regression weights on the standardised features.")
    bias: float = Field(description="Logistic-regression intercept.")
    threshold: float = Field(
        default=0.5, ge=0, le=1, description="Scores at or above this are labelled fraud."
    )
    trained_at: str = Field(description="ISO-8601 time the model was trained (passed in, never read).")
    metrics: TrainingMetrics = Field(description="Held-out quality of the model.")

    @model_validator(mode="after")
    def _consistent_shapes(self) -> ModelArtifact:
        if list(self.feature_names) != list(FEATURE_NAMES):
            raise ValueError(f"feature_names must be {list(FEATURE_NAMES)}, got {self.feature_names}")
        n = len(self.feature_names)
        for field in ("feature_means", "feature_scales", "weights"):
            if len(getattr(self, field)) != n:
                raise ValueError(f"{field} must have {n} entries, one per feature")
        if any(scale <= 0 for scale in self.feature_scales):
            raise ValueError("feature_scales must all be positive")
        return self

    def to_json_bytes(self) -> bytes:
        """Canonical JSON (sorted keys, no whitespace), so equal artifacts have equal bytes and SHA-256."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_json_bytes(cls, data: bytes | str) -> ModelArtifact:
        return cls.model_validate_json(data)

    def sha256(self) -> str:
        return hashlib.sha256(self.to_json_bytes()).hexdigest()


def _sigmoid(z: float) -> float:
    # Split by sign so exp never overflows for large |z|.
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def _transform(features: Mapping[str, float]) -> list[float]:
    return [
        math.log1p(features[name]) if name == "amount" else float(features[name]) for name in FEATURE_NAMES
    ]


def make_training_data(n: int = 2000, seed: int = 7) -> list[Transaction]:
    """Synthetic labelled transactions: fraud is likelier with risky merchants, abroad, at night, in bursts,
    and for large amounts. Deterministic for a given (n, seed)."""
    rng = random.Random(seed)
    rows: list[Transaction] = []
    for _ in range(n):
        amount = round(min(rng.lognormvariate(3.6, 1.1), 20_000.0), 2)
        merchant_risk = round(rng.betavariate(2.0, 5.0), 4)
        foreign = 1 if rng.random() < 0.15 else 0
        night = 1 if rng.random() < 0.25 else 0
        velocity = float(min(int(rng.expovariate(0.6)), 30))
        logit = (
            -8.2
            + 10.0 * merchant_risk
            + 2.8 * foreign
            + 2.0 * night
            + 1.0 * velocity
            + 1.3 * (math.log1p(amount) - 3.6)
        )
        is_fraud = rng.random() < _sigmoid(logit)
        rows.append(
            Transaction(
                amount=amount,
                merchant_risk=merchant_risk,
                foreign=foreign,
                night=night,
                velocity=velocity,
                is_fraud=is_fraud,
            )
        )
    return rows


def auc_score(labels: Sequence[bool], scores: Sequence[float]) -> float:
    """ROC AUC by the Mann-Whitney rank statistic (ties get their average rank)."""
    if len(labels) != len(scores):
        raise ValueError("labels and scores must have the same length")
    positives = sum(1 for label in labels if label)
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        raise ValueError("AUC needs at least one positive and one negative label")
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        average_rank = (i + j) / 2 + 1
        for k in range(i, j + 1):
            ranks[order[k]] = average_rank
        i = j + 1
    positive_rank_sum = sum(rank for rank, label in zip(ranks, labels, strict=True) if label)
    return (positive_rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def train(
    rows: Sequence[Transaction],
    *,
    epochs: int = 200,
    lr: float = 2.0,
    l2: float = 0.001,
    holdout: float = 0.25,
    trained_at: str = DEFAULT_TRAINED_AT,
    version: str = MODEL_VERSION,
) -> ModelArtifact:
    """Fit the scorer by full-batch gradient descent; measure it on the last `holdout` share of rows."""
    if not 0 < holdout < 1:
        raise ValueError("holdout must be strictly between 0 and 1")
    split = int(len(rows) * (1 - holdout))
    train_rows, test_rows = rows[:split], rows[split:]
    if not train_rows or not test_rows:
        raise ValueError(f"need rows on both sides of the split, got {len(rows)} rows")

    raw = [_transform(row.features()) for row in train_rows]
    labels = [1.0 if row.is_fraud else 0.0 for row in train_rows]
    n_features = len(FEATURE_NAMES)
    means = [math.fsum(x[j] for x in raw) / len(raw) for j in range(n_features)]
    scales = [
        math.sqrt(math.fsum((x[j] - means[j]) ** 2 for x in raw) / len(raw)) or 1.0 for j in range(n_features)
    ]
    xs = [[(x[j] - means[j]) / scales[j] for j in range(n_features)] for x in raw]

    weights = [0.0] * n_features
    bias = 0.0
    m = len(xs)
    for _ in range(epochs):
        grad_w = [0.0] * n_features
        grad_b = 0.0
        for x, y in zip(xs, labels, strict=True):
            z = bias
            for j in range(n_features):
                z += weights[j] * x[j]
            err = _sigmoid(z) - y
            grad_b += err
            for j in range(n_features):
                grad_w[j] += err * x[j]
        for j in range(n_features):
            weights[j] -= lr * (grad_w[j] / m + l2 * weights[j])
        bias -= lr * grad_b / m

    means = [round(v, _WEIGHT_DECIMALS) for v in means]
    scales = [round(v, _WEIGHT_DECIMALS) for v in scales]
    weights = [round(v, _WEIGHT_DECIMALS) for v in weights]
    bias = round(bias, _WEIGHT_DECIMALS)
    threshold = 0.5
    test_scores = [_score(means, scales, weights, bias, row.features()) for row in test_rows]
    test_labels = [row.is_fraud for row in test_rows]
    correct = sum(1 for s, y in zip(test_scores, test_labels, strict=True) if (s >= threshold) == y)
    return ModelArtifact(
        feature_names=list(FEATURE_NAMES),
        feature_means=means,
        feature_scales=scales,
        weights=weights,
        bias=bias,
        threshold=threshold,
        trained_at=trained_at,
        version=version,
        metrics=TrainingMetrics(
            accuracy=round(correct / len(test_rows), 6),
            auc=round(auc_score(test_labels, test_scores), 6),
            train_rows=len(train_rows),
            holdout_rows=len(test_rows),
            fraud_rate=round(sum(1 for row in rows if row.is_fraud) / len(rows), 6),
        ),
    )


def default_artifact(trained_at: str = DEFAULT_TRAINED_AT) -> ModelArtifact:
    """The artifact the local cloud serves: default data, default hyper-parameters."""
    return train(make_training_data(), trained_at=trained_at)


def _score(
    means: Sequence[float],
    scales: Sequence[float],
    weights: Sequence[float],
    bias: float,
    features: Mapping[str, float],
) -> float:
    z = bias
    for value, mean, scale, weight in zip(_transform(features), means, scales, weights, strict=True):
        z += weight * (value - mean) / scale
    return _sigmoid(z)


def _as_float(value: float) -> float | None:
    try:
        number = float(value)
    except OverflowError:  # an int too large for a float
        return None
    return number if math.isfinite(number) else None


def validate_features(features: Any) -> dict[str, float]:
    """Check a request's features; raise ValueError naming every problem a caller has to fix."""
    if not isinstance(features, Mapping):
        raise ValueError(f"features must be an object with keys {list(FEATURE_NAMES)}")
    missing = [name for name in FEATURE_NAMES if name not in features]
    extra = sorted(str(name) for name in features if name not in FEATURE_NAMES)
    problems: list[str] = []
    if missing:
        problems.append(f"missing feature(s): {', '.join(missing)}")
    if extra:
        problems.append(f"unexpected feature(s): {', '.join(extra)}")
    clean: dict[str, float] = {}
    for name in FEATURE_NAMES:
        if name not in features:
            continue
        raw = features[name]
        # bool is an int subclass, but `true` for an amount is a client bug worth reporting.
        number = _as_float(raw) if not isinstance(raw, bool) and isinstance(raw, int | float) else None
        if number is None:
            problems.append(f"feature {name!r} must be a finite number, got {raw!r}")
            continue
        if name in _BINARY_FEATURES and number not in (0.0, 1.0):
            problems.append(f"feature {name!r} must be 0 or 1, got {raw!r}")
        elif name == "merchant_risk" and not 0.0 <= number <= 1.0:
            problems.append(f"feature 'merchant_risk' must be between 0 and 1, got {raw!r}")
        elif name in ("amount", "velocity") and number < 0:
            problems.append(f"feature {name!r} must be >= 0, got {raw!r}")
        clean[name] = number
    if problems:
        raise ValueError("; ".join(problems))
    return clean


def predict(artifact: ModelArtifact, features: Any, *, sha256: str | None = None) -> dict[str, Any]:
    """Score one transaction. `sha256` lets a server pass the artifact hash it computed once at load."""
    clean = validate_features(features)
    score = round(
        _score(artifact.feature_means, artifact.feature_scales, artifact.weights, artifact.bias, clean), 6
    )
    return {
        "score": score,
        # Compare the rounded score so the label always agrees with the number the caller sees.
        "label": "fraud" if score >= artifact.threshold else "legit",
        "model_version": artifact.version,
        "model_sha256": sha256 or artifact.sha256(),
    }


GOLDEN_PAYLOADS: tuple[tuple[str, dict[str, float]], ...] = (
    # A large purchase abroad at a risky merchant, second card use within the hour.
    ("clear-fraud", {"amount": 450.0, "merchant_risk": 0.55, "foreign": 1, "night": 0, "velocity": 2}),
    # A small daytime purchase at home from a reputable merchant.
    ("clear-legit", {"amount": 42.0, "merchant_risk": 0.15, "foreign": 0, "night": 0, "velocity": 1}),
    # Just under the threshold: the case that exposes a model swapped for a slightly different one.
    ("borderline", {"amount": 65.0, "merchant_risk": 0.3, "foreign": 0, "night": 1, "velocity": 2}),
    # Above the threshold without being extreme.
    ("fraud", {"amount": 120.0, "merchant_risk": 0.35, "foreign": 0, "night": 1, "velocity": 2}),
)


def golden_cases(artifact: ModelArtifact) -> list[dict[str, Any]]:
    """Representative requests with this artifact's exact responses, for smoke tests and DR plans."""
    sha = artifact.sha256()
    return [
        {
            "name": name,
            "payload": {"features": dict(features)},
            "expected": predict(artifact, features, sha256=sha),
        }
        for name, features in GOLDEN_PAYLOADS
    ]

"""Small helpers for the low-level DynamoDB client: typed (de)serialisation without float surprises."""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

_ser = TypeSerializer()
_de = TypeDeserializer()


def to_item(values: dict[str, Any]) -> dict[str, Any]:
    """Serialise plain values (str, int, bool, None, lists/dicts of those) to a DynamoDB item."""
    return {k: _ser.serialize(v) for k, v in values.items() if v is not None}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in item.items():
        plain = _de.deserialize(value)
        # Numbers come back as Decimal; everything we store numerically is an int.
        if hasattr(plain, "to_integral_value"):
            plain = int(plain)
        out[key] = plain
    return out


def error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))

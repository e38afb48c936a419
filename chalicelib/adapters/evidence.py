"""The evidence bucket: verification reports (JSON + Markdown) and the intermediate results of a run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO, Any

from chalicelib.adapters import aws
from chalicelib.adapters.dynamo import error_code

VERIFICATION_PREFIX = "verification/"


class EvidenceStore:
    s3 = aws.Client("s3")

    def __init__(self, bucket: str, s3: Any | None = None) -> None:
        self.bucket = bucket
        self.s3 = s3

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def put_json(self, key: str, data: Any) -> str:
        body = json.dumps(data, indent=2, sort_keys=True, default=str).encode()
        self.s3.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=body,
            ContentType="application/json",
            ServerSideEncryption="AES256",
        )
        return self.uri(key)

    def put_text(self, key: str, text: str, content_type: str = "text/markdown; charset=utf-8") -> str:
        self.s3.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=text.encode(),
            ContentType=content_type,
            ServerSideEncryption="AES256",
        )
        return self.uri(key)

    def put_lines(self, key: str, lines: IO[bytes]) -> str:
        """Upload a JSON Lines file (read from `lines`, from its start) without holding it in memory."""
        lines.seek(0)
        self.s3.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=lines,
            ContentType="application/x-ndjson",
            ServerSideEncryption="AES256",
        )
        return self.uri(key)

    def copy_into(self, key: str, out: IO[bytes]) -> None:
        """Append an object's bytes to `out`, streamed."""
        body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"]
        for chunk in iter(lambda: body.read(1 << 20), b""):
            out.write(chunk)

    def get_json(self, key: str) -> Any | None:
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except Exception as exc:
            if error_code(exc) in ("NoSuchKey", "404"):
                return None
            raise
        return json.loads(body)

    def iter_json(self, prefix: str) -> Iterator[tuple[str, Any]]:
        """Every JSON object under `prefix`, one at a time (a run's shard results)."""
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        while True:
            page = self.s3.list_objects_v2(**kwargs)
            for obj in page.get("Contents", []):
                body = self.s3.get_object(Bucket=self.bucket, Key=obj["Key"])["Body"].read()
                yield obj["Key"], json.loads(body)
            if not page.get("IsTruncated"):
                return
            kwargs["ContinuationToken"] = page["NextContinuationToken"]


def run_prefix(workload: str, run_id: str) -> str:
    return f"{VERIFICATION_PREFIX}{workload}/{run_id}/"


def latest_key(workload: str) -> str:
    return f"{VERIFICATION_PREFIX}{workload}/latest.json"

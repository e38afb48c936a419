"""Drill evidence in the evidence bucket: one folder per drill.

drills/<workload>/<drill id>/record.json   the DrillRecord (what the reports are rendered from)
drills/<workload>/<drill id>/report.md     Markdown report
drills/<workload>/<drill id>/report.html   self-contained HTML report (inline SVG pictures)
"""

from __future__ import annotations

from typing import Any

from chalicelib.adapters import aws
from chalicelib.adapters.dynamo import error_code
from chalicelib.models.drill import DrillRecord

PREFIX = "drills/"
CONTENT_TYPES = {
    "record.json": "application/json",
    "report.md": "text/markdown; charset=utf-8",
    "report.html": "text/html; charset=utf-8",
}


class DrillEvidence:
    s3 = aws.Client("s3")

    def __init__(self, bucket: str, s3: Any | None = None) -> None:
        self.bucket = bucket
        self.s3 = s3

    @staticmethod
    def folder(workload: str, drill_id: str) -> str:
        return f"{PREFIX}{workload}/{drill_id}/"

    def urls(self, record: DrillRecord) -> dict[str, str]:
        folder = self.folder(record.workload, record.drill_id)
        return {
            "record": f"s3://{self.bucket}/{folder}record.json",
            "markdown": f"s3://{self.bucket}/{folder}report.md",
            "html": f"s3://{self.bucket}/{folder}report.html",
        }

    def put(self, record: DrillRecord, *, markdown: str, html: str) -> dict[str, str]:
        """Store the record and both reports; returns {record, markdown, html} -> s3:// URLs."""
        folder = self.folder(record.workload, record.drill_id)
        for name, body in (
            ("report.md", markdown),
            ("report.html", html),
            ("record.json", record.model_dump_json(indent=2)),
        ):
            self.s3.put_object(
                Bucket=self.bucket,
                Key=folder + name,
                Body=body.encode("utf-8"),
                ContentType=CONTENT_TYPES[name],
                ServerSideEncryption="AES256",
            )
        return self.urls(record)

    def _read(self, key: str) -> bytes | None:
        try:
            return bytes(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        except Exception as exc:
            if error_code(exc) in ("NoSuchKey", "404", "NotFound"):
                return None
            raise

    def get(self, workload: str, drill_id: str) -> DrillRecord | None:
        body = self._read(self.folder(workload, drill_id) + "record.json")
        return DrillRecord.model_validate_json(body) if body is not None else None

    def report(self, workload: str, drill_id: str, kind: str = "html") -> str | None:
        name = "report.html" if kind == "html" else "report.md"
        body = self._read(self.folder(workload, drill_id) + name)
        return body.decode("utf-8") if body is not None else None

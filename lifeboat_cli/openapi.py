"""Build docs/openapi.json: the console API as OpenAPI 3.1.

Routes, methods, summaries and the IAM (SigV4) security come from Chalice's own Swagger generator (what
`chalice deploy` gives API Gateway); request/response schemas come from the pydantic models the routes
declare. `python -m lifeboat_cli.openapi` rewrites the file; `--check` exits 1 when it is out of date.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "openapi.json"
REF = "#/components/schemas/{model}"

_STATUS_TEXT = {
    200: "OK",
    202: "Accepted: the operation started; follow it at /executions/{id}",
    400: "Bad request: `problems` names each field at fault (a key given twice in the body by that key)",
    403: "No verified IAM identity (SigV4) on the request",
    404: "Unknown workload or execution",
    409: "Another operation runs or holds the workload's lock (its id in `execution`), the operation has "
    "nothing to act on (e.g. nothing to fail back), or the control does not apply to the execution as it "
    "stands",
    413: "Body larger than 16 KiB",
    415: "Content-Type is not application/json",
    500: "Lifeboat failed (never for bad input); e.g. a stored plan is invalid",
    501: "Not available yet",
    503: "AWS throttled or failed; retry after Retry-After seconds",
}
_PATH_PARAMS = {
    "workload": {
        "description": "Workload name, as in its DR plan.",
        "schema": {"type": "string", "pattern": "^[a-z][a-z0-9-]{1,38}[a-z0-9]$"},
    },
    "id": {
        "description": "Execution id: the `id` field returned for an execution (its ARN in unpadded "
        "base64url), or the execution name.",
        "schema": {"type": "string", "minLength": 1, "maxLength": 400},
    },
    "drill_id": {
        "description": "Drill id, as returned by POST /workloads/{workload}/drills and GET /drills.",
        "schema": {"type": "string", "pattern": "^drill-\\d{8}T\\d{6}Z-[0-9a-f]{4}$"},
    },
}


def _schemas(models: list[tuple[type[BaseModel], str]]) -> tuple[dict[Any, Any], dict[str, Any]]:
    refs, top = models_json_schema(models, ref_template=REF)  # type: ignore[arg-type]
    return refs, dict(top.get("$defs", {}))


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=REF)
    required = set(schema.get("required", []))
    params = []
    for name, prop in schema.get("properties", {}).items():
        prop = dict(prop)
        description = prop.pop("description", "")
        prop.pop("title", None)
        params.append(
            {
                "name": name,
                "in": "query",
                "required": name in required,
                "description": description,
                "schema": prop,
            }
        )
    return params


def build(app: Any = None) -> dict[str, Any]:
    from chalice.deploy.swagger import CFNSwaggerGenerator

    from chalicelib.blueprints.api import declared_routes
    from chalicelib.models.api import ErrorBody

    if app is None:
        from app import app as lifeboat_app

        app = lifeboat_app
    swagger = CFNSwaggerGenerator().generate_swagger(app)
    routes = declared_routes()

    wanted: list[tuple[type[BaseModel], str]] = [(ErrorBody, "serialization")]
    for doc in routes.values():
        if doc.body is not None:
            wanted.append((doc.body, "validation"))
        for answer in doc.responses.values():
            wanted += [(m, "serialization") for m in _models(answer)]
    wanted = list(dict.fromkeys(wanted))
    refs, schemas = _schemas(wanted)

    def ref(model: type[BaseModel], mode: str) -> dict[str, Any]:
        return dict(refs[(model, mode)])

    paths: dict[str, Any] = {}
    for path, methods in sorted(swagger["paths"].items()):
        for method, op in sorted(methods.items()):
            doc = routes.get((path, method.upper()))
            operation: dict[str, Any] = {
                "operationId": _operation_id(app, path, method),
                "summary": op.get("summary", ""),
            }
            if op.get("description"):
                operation["description"] = op["description"]
            operation["security"] = op.get("security", [])
            params = [
                {"name": p["name"], "in": "path", "required": True, **_PATH_PARAMS.get(p["name"], {})}
                for p in op.get("parameters", [])
            ]
            responses: dict[str, Any] = {}
            if doc is None:  # GET /health: the one anonymous route
                operation["tags"] = ["health"]
                responses["200"] = {
                    "description": "Alive",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {"status": {"const": "ok"}},
                                "required": ["status"],
                            }
                        }
                    },
                }
            else:
                operation["tags"] = [doc.tag]
                if doc.query is not None:
                    params += _query_parameters(doc.query)
                if doc.body is not None:
                    operation["requestBody"] = {
                        "required": doc.body_required,
                        "content": {"application/json": {"schema": ref(doc.body, "validation")}},
                    }
                for status, answer in sorted(doc.responses.items()):
                    entry: dict[str, Any] = {"description": _STATUS_TEXT.get(status, "")}
                    schemas_of = [ref(m, "serialization") for m in _models(answer)]
                    if len(schemas_of) == 1:
                        entry["content"] = {"application/json": {"schema": schemas_of[0]}}
                    elif schemas_of:
                        entry["content"] = {"application/json": {"schema": {"oneOf": schemas_of}}}
                    responses[str(status)] = entry
                for status in doc.errors:
                    responses[str(status)] = {
                        "description": _STATUS_TEXT.get(status, ""),
                        "content": {"application/json": {"schema": ref(ErrorBody, "serialization")}},
                    }
            if params:
                operation["parameters"] = params
            operation["responses"] = dict(sorted(responses.items()))
            paths.setdefault(path, {})[method] = operation

    security = {
        name: {
            "type": "apiKey",
            "in": spec["in"],
            "name": spec["name"],
            "description": "AWS Signature Version 4 (IAM): sign requests with your AWS credentials.",
            "x-amazon-apigateway-authtype": spec.get("x-amazon-apigateway-authtype"),
        }
        for name, spec in sorted(swagger.get("securityDefinitions", {}).items())
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"{swagger['info']['title']} console API",
            "version": "1.0",
            "description": "On-demand DR operations for ML inference workloads. See docs/api.md. Generated "
            "by `python -m lifeboat_cli.openapi`; do not edit by hand.",
        },
        "paths": paths,
        "components": {"schemas": dict(sorted(schemas.items())), "securitySchemes": security},
    }


def _models(answer: Any) -> list[type[BaseModel]]:
    """The models a declared answer names: none, one, or each of a tuple (a oneOf)."""
    if answer is None:
        return []
    return list(answer) if isinstance(answer, tuple) else [answer]


def _operation_id(app: Any, path: str, method: str) -> str:
    return str(app.routes[path][method.upper()].view_name)


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lifeboat_cli.openapi", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/openapi.json is out of date")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    text = render(build())
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            sys.stderr.write(f"{args.output} is out of date: run python -m lifeboat_cli.openapi\n")
            return 1
        return 0
    args.output.write_text(text, encoding="utf-8")
    sys.stdout.write(f"wrote {args.output}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

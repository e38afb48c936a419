"""The layer rule no review has to remember: AWS clients are built only in chalicelib/adapters/.

Every module of chalicelib/ is read as source (AST, nothing imported): outside chalicelib/adapters/ no module
may import boto3 or botocore, or touch the client factory of `chalicelib.adapters.aws` (`client`, `factory`,
`ClientFactory`, under whatever name it was imported). Services, blueprints and domain code reach AWS through
an adapter handed out by `chalicelib/services/deps.py` (`Deps`).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "chalicelib"
ADAPTERS = PACKAGE / "adapters"
FACTORY_MODULE = "chalicelib.adapters.aws"
FACTORY_NAMES = frozenset({"client", "factory", "ClientFactory"})
SDK_PACKAGES = frozenset({"boto3", "botocore"})

FIX = (
    "move the AWS call into an adapter in chalicelib/adapters/ (which asks chalicelib.adapters.aws for its "
    "client) and reach the adapter through chalicelib/services/deps.py (Deps)"
)


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


def _sdk(module: str) -> bool:
    return module.split(".")[0] in SDK_PACKAGES


def aws_client_builds(source: str, path: str) -> list[Finding]:
    """Where `source` imports the AWS SDK or uses the client factory (any name it is bound to)."""
    tree = ast.parse(source, filename=path)
    found: list[Finding] = []
    factory_modules: set[str] = set()  # local names of chalicelib.adapters.aws (or a dotted path to it)
    factory_functions: set[str] = set()  # local names of its client / factory / ClientFactory

    def report(node: ast.AST, what: str) -> None:
        found.append(Finding(path, getattr(node, "lineno", 0), what))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _sdk(alias.name):
                    report(node, f"imports {alias.name}")
                elif alias.name == FACTORY_MODULE:
                    factory_modules.add(alias.asname or FACTORY_MODULE)
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(node, path)
            if _sdk(module):
                report(node, f"imports from {module}")
            elif any(alias.name in SDK_PACKAGES for alias in node.names):
                report(node, f"imports the AWS SDK through {module}")
            elif module == "chalicelib.adapters":
                factory_modules.update(a.asname or a.name for a in node.names if a.name == "aws")
            elif module == FACTORY_MODULE:
                for alias in node.names:
                    if alias.name in FACTORY_NAMES or alias.name == "*":
                        factory_functions.add(alias.asname or alias.name)
                        report(node, f"imports {alias.name} from {FACTORY_MODULE}")
        elif isinstance(node, ast.Call) and _dynamic_sdk_import(node):
            report(node, "imports the AWS SDK dynamically")

    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in FACTORY_NAMES | SDK_PACKAGES:
            owner = ast.unparse(node.value)
            if owner in factory_modules:
                report(node, f"uses the client factory ({owner}.{node.attr})")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in factory_functions:
                report(node, f"uses the client factory ({node.func.id}(...))")
    return sorted(set(found), key=lambda f: (f.line, f.what))


def _absolute(node: ast.ImportFrom, path: str) -> str:
    """The module a `from ... import` names, relative imports resolved against the file's package."""
    if node.level == 0:
        return node.module or ""
    package = Path(path).parent.parts
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _dynamic_sdk_import(call: ast.Call) -> bool:
    name = ast.unparse(call.func)
    if name not in ("__import__", "importlib.import_module", "import_module") or not call.args:
        return False
    first = call.args[0]
    return isinstance(first, ast.Constant) and isinstance(first.value, str) and _sdk(first.value)


def scan() -> dict[str, list[Finding]]:
    """Every module of chalicelib/ outside chalicelib/adapters/ that builds (or could build) an AWS client."""
    out: dict[str, list[Finding]] = {}
    for file in sorted(PACKAGE.rglob("*.py")):
        if ADAPTERS in file.parents:
            continue
        rel = file.relative_to(ROOT).as_posix()
        findings = aws_client_builds(file.read_text(encoding="utf-8"), rel)
        if findings:
            out[rel] = findings
    return out


# -- the rule, on the real code ------------------------------------------------------------------------------
def test_aws_clients_are_built_only_in_adapters() -> None:
    # Given every module of chalicelib/ outside the adapters
    # When each is scanned for the AWS SDK and the client factory
    found = scan()
    # Then none builds an AWS client
    offending = [str(f) for findings in found.values() for f in findings]
    assert not offending, (
        "AWS clients are built only in chalicelib/adapters/ (docs/architecture.md). Found:\n  "
        + "\n  ".join(offending)
        + f"\nTo fix: {FIX}."
    )


# -- the scanner sees what it must ---------------------------------------------------------------------------
def test_the_scanner_finds_every_way_to_build_a_client() -> None:
    # Given a module using the SDK and the factory in every way the rule forbids
    source = "\n".join(
        [
            "import boto3",  # 1
            "from botocore.config import Config",  # 2
            "from chalicelib.adapters import aws",  # 3
            "from chalicelib.adapters import aws as cloud",  # 4
            "import chalicelib.adapters.aws",  # 5
            "from chalicelib.adapters.aws import client as make",  # 6
            "s3 = aws.client('s3')",  # 7
            "ddb = cloud.factory().client('dynamodb')",  # 8
            "sm = chalicelib.adapters.aws.client('sagemaker')",  # 9
            "ev = make('events')",  # 10
            "getter = lambda region: aws.client('s3', region)",  # 11
            "sdk = __import__('boto3')",  # 12
            "aws.reset()",  # 13: forgetting clients builds none
            "from chalicelib.adapters.aws import boto3",  # 14
            "session = aws.boto3.session.Session()",  # 15
            "from ..adapters import aws as near",  # 16
            "near.client('sns')",  # 17
            "from ..adapters.aws import factory",  # 18
        ]
    )
    # When it is scanned
    found = aws_client_builds(source, "chalicelib/services/example.py")
    # Then every line but the reset is reported, with its line and what it does
    assert sorted({f.line for f in found}) == [1, 2, 6, 7, 8, 9, 10, 11, 12, 14, 15, 17, 18]
    assert "chalicelib/services/example.py:8: uses the client factory (cloud.factory)" in map(str, found)


def test_the_scanner_leaves_modules_without_aws_alone() -> None:
    # Given a service that reaches AWS only through its Deps, and unrelated names that look alike
    source = (
        "from chalicelib.adapters.locks import LockTable\n"
        "def run(d, http):\n"
        "    d.buckets.objects('us-east-1', 'b', 'p')\n"
        "    http.client('x')\n"
        "    client = 'boto3'\n"
    )
    # Then nothing is reported
    assert aws_client_builds(source, "chalicelib/services/fine.py") == []

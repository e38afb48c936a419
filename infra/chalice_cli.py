"""The Chalice CLI, packaging for Lifeboat's Lambda runtime rather than for the local interpreter's version.

Chalice picks the Lambda runtime from the Python that runs it (3.11 here), and Lambda no longer creates
python3.11 functions. So `infra.build` runs Chalice through this module: the runtime is the local cloud's
(python3.12), and pip (which Chalice runs as a subprocess, inheriting the environment) downloads wheels for
that version: see `pip_environment`. tests/infra checks the packaged runtime and the zip's compiled wheels.

    python -m infra.chalice_cli package --stage dev --merge-template m.json build/dev/us-west-2
"""

from __future__ import annotations

import sys

from localcloud.resources import RUNTIME

PYTHON_VERSION = RUNTIME.removeprefix("python")  # "3.12"


def pip_environment() -> dict[str, str]:
    """Make every `pip download` Chalice runs fetch wheels for the Lambda runtime's Python version.

    With a target version pip only accepts wheels (`--only-binary`); every dependency of requirements.txt
    publishes manylinux wheels, so no sdist is ever built for the wrong interpreter.
    """
    return {"PIP_PYTHON_VERSION": PYTHON_VERSION, "PIP_ONLY_BINARY": ":all:"}


def main() -> int:
    from chalice.cli import main as chalice_main
    from chalice.config import Config

    Config.lambda_python_version = property(lambda self: RUNTIME)  # type: ignore[assignment,method-assign]
    return int(chalice_main() or 0)


if __name__ == "__main__":
    sys.argv[0] = "chalice"
    sys.exit(main())

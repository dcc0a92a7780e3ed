"""The published JSON Schema of `-o json|yaml` (docs/schema/), for tests to validate against."""

from __future__ import annotations

import functools
import json
from pathlib import Path

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "docs" / "schema" / "kubectl-mesh.v1.schema.json"


@functools.cache
def validator():
    from jsonschema import Draft202012Validator

    schema = json.loads(SCHEMA_PATH.read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def problems(document) -> list[str]:
    """Where `document` departs from the schema: one line each, with its JSON path."""
    found = sorted(validator().iter_errors(document), key=lambda e: list(e.absolute_path))
    lines = []
    for error in found:
        # An if/then or oneOf failure is clearer through its deepest cause.
        leaf = min(error.context, key=lambda e: -len(e.absolute_path)) if error.context else error
        path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in leaf.absolute_path)
        lines.append(f"{path}: {leaf.message}")
    return lines


def assert_valid(document, what: str = "document") -> None:
    found = problems(document)
    if found:
        raise AssertionError(f"{what} does not follow {SCHEMA_PATH.name}:\n  " + "\n  ".join(found))


def output_format(args) -> str | None:
    """json or yaml when the arguments ask for it (-o json, -ojson, --output=json, --output json)."""
    args = list(args)
    for i, arg in enumerate(args):
        if arg == "--":
            break
        value = None
        if arg in ("-o", "--output") and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith("--output="):
            value = arg.split("=", 1)[1]
        elif arg.startswith("-o") and len(arg) > 2:
            value = arg[2:].lstrip("=")
        if value in ("json", "yaml"):
            return value
    return None

"""examples/runbook.sh gates with one jq-free Python one-liner each, over documented paths: every
`gate EXPR` is a plain Python expression, and each `d[...]` path in it is declared by the
published schema (docs/schema/), so a renamed or undocumented field fails here, before a
runbook in the field breaks. (tests/e2e/test_runbook.py runs the script end to end.)"""

from __future__ import annotations

import ast
import json
import re
import shlex
from pathlib import Path

import pytest

from tests.schema import SCHEMA_PATH

ROOT = Path(__file__).resolve().parent.parent
RUNBOOK = ROOT / "examples" / "runbook.sh"
GATE_CALL = re.compile(r"\|\s*gate\s+('[^']*'|\"[^\"]*\")")


def gates(script: str) -> list[str]:
    """The expression of every `... | gate EXPR` line (the shell's quoting undone)."""
    return [shlex.split(m.group(1))[0] for m in GATE_CALL.finditer(script)]


def paths(expression: str) -> list[list[str | int]]:
    """Each d[...][...] chain in a Python expression, outermost subscripts only."""
    found, inner = [], set()
    for node in ast.walk(ast.parse(expression, mode="eval")):
        if not isinstance(node, ast.Subscript) or id(node) in inner:
            continue
        keys, at = [], node
        while isinstance(at, ast.Subscript):
            inner.add(id(at))
            assert isinstance(at.slice, ast.Constant), f"a computed key in {expression!r}"
            keys.insert(0, at.slice.value)
            at = at.value
        assert isinstance(at, ast.Name) and at.id == "d", f"a gate reads only the document d: {expression!r}"
        found.append(keys)
    return found


def _branches(schema: dict, root: dict):
    if "$ref" in schema:
        ref = schema["$ref"].removeprefix("#/")
        target = root
        for part in ref.split("/"):
            target = target[part]
        yield from _branches(target, root)
        return
    yield schema
    for key in ("oneOf", "anyOf", "allOf"):
        for sub in schema.get(key) or []:
            yield from _branches(sub, root)


def declared(path: list[str | int], schema: dict, root: dict) -> bool:
    """The path is declared: each name a property (or a key of a declared map), each index an array's."""
    if not path:
        return True
    key, rest = path[0], path[1:]
    for branch in _branches(schema, root):
        if isinstance(key, int) and "items" in branch and declared(rest, branch["items"], root):
            return True
        if isinstance(key, str):
            if key in (branch.get("properties") or {}) and declared(rest, branch["properties"][key], root):
                return True
            extra = branch.get("additionalProperties")
            if isinstance(extra, dict) and declared(rest, extra, root):
                return True
    return False


def test_the_checks_of_this_test_can_fail():
    root = json.loads(SCHEMA_PATH.read_text())
    assert declared(["namespaces", 0, "mtls", "mode"], root, root)
    assert not declared(["verify", "mtls", "namespace", "mode"], root, root)  # the pre-v1 path
    assert not declared(["namespaces", 0, "pods", "meshedd"], root, root)
    assert sorted(paths('d["a"][0]["b"] == 1 and d["c"]'), key=len) == [["c"], ["a", 0, "b"]]
    with pytest.raises(AssertionError):
        paths("json.loads(x)['a']")


def test_every_gate_is_one_python_expression_over_declared_paths():
    script = RUNBOOK.read_text()
    assert "jq" not in re.sub(r"#.*", "", script), "the runbook needs no jq"
    expressions = gates(script)
    assert len(expressions) >= 10, expressions  # one per step's gate
    assert script.count("| gate ") == len(expressions)  # every gate call was read
    root = json.loads(SCHEMA_PATH.read_text())
    undeclared = []
    for expression in expressions:
        chains = paths(expression)
        assert chains, f"a gate that reads nothing: {expression!r}"
        undeclared += [f"{expression!r}: {chain}" for chain in chains if not declared(chain, root, root)]
    assert not undeclared, "gates read paths the schema does not declare:\n" + "\n".join(undeclared)


def test_the_gate_function_is_a_python_one_liner():
    script = RUNBOOK.read_text()
    (definition,) = [line for line in script.splitlines() if line.startswith("gate()")]
    assert "python3 -c" in definition and "json.load(sys.stdin)" in definition

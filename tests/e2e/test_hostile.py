"""Input from the cluster is untrusted: what anyone with edit rights writes into an
object reaches the terminal escaped, and exactly in JSON."""

from __future__ import annotations

import json

from tests.e2e.test_policy import APP, SET, _ok

VS = "virtualservices.networking.istio.io"
FORGED = "canary\x1b[2J\x1b[H\r✓ all checks passed\x07"


def _strings(value):
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


def test_a_canary_role_annotation_cannot_clear_the_screen_or_forge_a_line(e2e, kubectl, mesh):
    kubectl("apply", "-f", "-", input=APP)
    _ok(mesh(*SET, "--weight", "10"))
    vs = json.loads(kubectl("get", VS, "my-app", "-n", "my-app", "-o", "json").stdout)
    vs["metadata"]["annotations"]["kubectl-mesh.io/canary"] = json.dumps({"stable": "stable", "canary": FORGED})
    kubectl("replace", "-f", "-", input=json.dumps(vs))
    text = mesh("canary", "status", "my-app", "-n", "my-app")
    assert not any(c in text.stdout + text.stderr for c in "\x1b\x07\r"), text.stdout
    assert "canary\\x1b[2J\\x1b[H\\r✓ all checks passed\\x07" in text.stdout
    doc = json.loads(mesh("canary", "status", "my-app", "-n", "my-app", "-o", "json").stdout)
    assert FORGED in _strings(doc)  # JSON carries it exactly
    for argv in (("status", "my-app"), ("diagnose", "my-app")):
        out = mesh(*argv)
        assert not any(c in out.stdout + out.stderr for c in "\x1b\x07\r"), argv

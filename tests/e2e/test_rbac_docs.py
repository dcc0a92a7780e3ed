"""docs/rbac.md's least-privilege Roles, applied exactly as written there: with each, the
commands listed for it work for real (writes included), and nothing more is needed."""

from __future__ import annotations

import json

import pytest

from tests.e2e.personas import NS, docs_roles, for_user
from tests.e2e.test_diagnose_status import CANARY

USERS = ["reader", "traffic", "operator", "platform"]


@pytest.fixture
def docs_cluster(e2e):
    docs = docs_roles()
    e2e.cluster.load(CANARY)
    e2e.cluster.load(for_user(docs["mesh-reader"], "reader"))
    e2e.cluster.load(for_user(docs["mesh-reader"] + docs["mesh-traffic"], "traffic"))
    e2e.cluster.load(for_user(docs["mesh-reader"] + docs["mesh-operator"], "operator"))
    e2e.cluster.load(for_user(docs["mesh-reader"] + docs["mesh-operator"] + docs["mesh-wide-reader"], "platform"))
    return e2e.cluster


def _weights(kubectl) -> list[int]:
    vs = json.loads(kubectl("get", "virtualservices.networking.istio.io", "reviews", "-n", NS, "-o", "json").stdout)
    return [d["weight"] for d in vs["spec"]["http"][0]["route"]]


@pytest.mark.cluster(users=USERS)
def test_each_documented_role_runs_its_commands(docs_cluster, kubectl, mesh):
    def ok(user: str, *args: str) -> str:
        result = mesh(*args, "--context", user)
        assert result.returncode == 0, f"{user}: kubectl mesh {' '.join(args)}: {result.stdout}{result.stderr}"
        return result.stdout

    for command in (["verify", NS, "--no-istioctl"], ["status", NS], ["diagnose", NS],
                    ["canary", "status", "reviews", "-n", NS], ["circuit-breaker", "status", "reviews", "-n", NS],
                    ["mtls", NS, "status"]):
        ok("reader", *command)
    # Traffic changes, for real.
    ok("traffic", "canary", "reviews", "--stable", "v1", "--canary", "v2", "--weight", "20", "-n", NS)
    assert _weights(kubectl) == [80, 20]
    ok("traffic", "canary", "promote", "reviews", "--full", "-n", NS)
    ok("traffic", "canary", "rollback", "reviews", "-n", NS)
    assert _weights(kubectl)[0] == 100
    ok("traffic", "circuit-breaker", "reviews", "--max-connections", "50", "-n", NS)
    # The platform admin's part.
    ok("operator", "mtls", NS, "permissive")
    ok("operator", "sidecar-resources", "deploy/reviews-v1", "-n", NS, "--cpu", "200m", "--memory", "256Mi")
    ok("operator", "enable", NS, "--restart", "all", "--no-istioctl")
    # With the mesh-wide reads too, nothing is unknown: strict goes ahead, no check is skipped.
    out = ok("platform", "mtls", NS, "strict")
    assert "mTLS mode unknown" not in out
    verify = json.loads(ok("platform", "verify", NS, "--no-istioctl", "-o", "json"))
    assert not [c for c in verify["checks"] if c["result"] == "skip"]
    docs_cluster.assert_healthy()


@pytest.mark.cluster(users=USERS)
def test_a_role_that_lacks_a_write_changes_nothing(docs_cluster, kubectl, mesh):
    writes = len(docs_cluster.requests.writes())
    result = mesh("canary", "reviews", "--stable", "v1", "--canary", "v2", "--weight", "20", "-n", NS,
                  "--context", "reader", "-o", "json")
    assert result.returncode == 4
    doc = json.loads(result.stdout)
    missing = [(c["verb"], c["resource"], c["namespace"], c.get("name")) for c in doc["checks"]
               if c["id"] == "permission"]
    assert missing == [("create or patch", "destinationrules.networking.istio.io", NS, "reviews"),
                       ("create or patch", "virtualservices.networking.istio.io", NS, "reviews")]
    assert doc["error"]["type"] == "Forbidden"
    assert len(docs_cluster.requests.writes()) == writes
    assert _weights(kubectl) == [90, 10]
    labelled = mesh("disable", NS, "--force", "--context", "traffic")
    assert labelled.returncode == 4
    assert "a namespace admin can change the label for you: kubectl label namespace shop istio-injection-" \
           in labelled.stdout

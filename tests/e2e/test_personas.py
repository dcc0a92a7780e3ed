"""The permission matrix: every command, run through the real kubectl as each persona
against the RBAC-enforcing test API server, on a mesh whose mesh-wide policy is STRICT.

Personas (tests/e2e/personas.py): `test` (cluster-admin), `edit-istio` (edit plus a Role on
the Istio kinds in the namespace), `view-istio` (view plus an Istio read Role), and the
least-privilege Roles of docs/rbac.md, applied as written there: `reader` (mesh-reader),
`traffic` (mesh-reader + mesh-traffic), `operator` (mesh-reader + mesh-operator), `platform`
(operator + the mesh-wide reads). Mutating commands run with --dry-run (the permission
check runs all the same); test_rbac_docs.py makes the writes for real.

For each command the expected exit code and key line: works, skips naming the permission,
or refuses naming it. README.md shows this matrix as a table.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cluster import TestCluster
from tests.e2e.personas import NS, docs_roles, for_user, personas
from tests.e2e.test_diagnose_status import CANARY

STRICT_MESH = {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
               "metadata": {"name": "default", "namespace": "istio-system"}, "spec": {"mtls": {"mode": "STRICT"}}}
UNKNOWN = ("mTLS mode unknown: the mesh-wide policy in istio-system is not readable "
           "(needs list peerauthentications.security.istio.io in istio-system)")
NEEDS_DR = "not allowed: create or patch destinationrules.networking.istio.io/reviews in shop"
NEEDS_PA = "not allowed: create or patch peerauthentications.security.istio.io/default in shop"
NEEDS_DEPLOY = "not allowed: patch deployments.apps/reviews-v1 in shop"
STRICT_REFUSED = UNKNOWN + "; cannot tell whether going to STRICT is safe"

ADMIN = "test"
NAMESPACED = ("edit-istio", "view-istio", "reader", "traffic", "operator")
EVERYONE = (ADMIN, *NAMESPACED, "platform")

READ_ONLY = {
    "verify": ["verify", NS, "--no-istioctl"],
    "status": ["status", NS],
    "diagnose": ["diagnose", NS],
    "canary status": ["canary", "status", "reviews", "-n", NS],
    "circuit-breaker status": ["circuit-breaker", "status", "reviews", "-n", NS],
    "mtls status": ["mtls", NS, "status"],
}
MUTATING = {
    "canary --weight": ["canary", "reviews", "--stable", "v1", "--canary", "v2", "--weight", "20", "-n", NS,
                        "--dry-run"],
    "circuit-breaker": ["circuit-breaker", "reviews", "--max-connections", "50", "-n", NS, "--dry-run"],
    "mtls permissive": ["mtls", NS, "permissive", "--dry-run"],
    "mtls strict": ["mtls", NS, "strict", "--dry-run"],
    "enable": ["enable", NS, "--dry-run", "--no-istioctl"],
    "disable": ["disable", NS, "--dry-run"],
    "sidecar-resources": ["sidecar-resources", "deploy/reviews-v1", "-n", NS, "--cpu", "200m", "--memory", "256Mi",
                          "--dry-run"],
}


def _row(default, **overrides):
    return {p: overrides.get(p.replace("-", "_"), default) for p in EVERYONE}


# command -> persona -> (exit code, a line the output must contain)
MATRIX = {
    "verify": _row((0, "- " + UNKNOWN), test=(0, "mTLS mode STRICT (PeerAuthentication istio-system/default"),
                   platform=(0, "mTLS mode STRICT (PeerAuthentication istio-system/default")),
    "status": _row((0, "unknown (the mesh-wide policy in istio-system is not readable; needs list "
                       "peerauthentications.security.istio.io in istio-system)"),
                   test=(0, "STRICT (PeerAuthentication istio-system/default, mesh-wide)"),
                   platform=(0, "STRICT (PeerAuthentication istio-system/default, mesh-wide)")),
    "diagnose": _row((0, "- peerauthentications in istio-system not readable: mTLS checks that depend on these "
                         "policies were skipped (needs list peerauthentications.security.istio.io in istio-system)"),
                     test=(0, "no findings"), platform=(0, "no findings")),
    "canary status": _row((0, "✓ service reviews: subset canary receives 10%: 1/1 pod ready")),
    "circuit-breaker status": _row((0, "✓ circuit breaker in force from destinationrule/reviews")),
    "mtls status": _row((0, "- namespace shop: " + UNKNOWN),
                        test=(0, "namespace shop: STRICT"), platform=(0, "namespace shop: STRICT")),
    "canary --weight": _row((4, NEEDS_DR), test=(0, "[planned]"), edit_istio=(0, "[planned]"), traffic=(0, "[planned]")),
    "circuit-breaker": _row((4, NEEDS_DR), test=(0, "[planned]"), edit_istio=(0, "[planned]"), traffic=(0, "[planned]")),
    "mtls permissive": _row((4, NEEDS_PA), test=(0, "[planned]"), edit_istio=(0, "[planned]"), operator=(0, "[planned]"),
                            platform=(0, "[planned]")),
    "mtls strict": _row((3, STRICT_REFUSED), test=(0, "[planned]"), platform=(0, "[planned]")),
    # The namespace is labelled and every pod meshed: nothing to write, so nothing to be allowed.
    "enable": _row((0, "= label namespace/shop: labels already as wanted [unchanged]")),
    # The mesh-wide policy is STRICT: disabling would cut the pods off (refused for the admin too).
    "disable": _row((3, UNKNOWN + "; if STRICT applies"),
                    test=(3, "STRICT mTLS applies to shop (PeerAuthentication istio-system/default (mesh-wide))"),
                    platform=(3, "STRICT mTLS applies to shop (PeerAuthentication istio-system/default (mesh-wide))")),
    "sidecar-resources": _row((4, NEEDS_DEPLOY), test=(0, "[planned]"), edit_istio=(0, "[planned]"),
                              operator=(0, "[planned]"), platform=(0, "[planned]")),
}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One cluster with every persona, the guide's canary namespace and a STRICT mesh."""
    tmp = tmp_path_factory.mktemp("personas")
    everyone = personas()
    docs = docs_roles()
    everyone["platform"] = for_user(docs["mesh-reader"] + docs["mesh-operator"] + docs["mesh-wide-reader"],
                                    "platform")
    cluster = TestCluster(users=list(everyone)).start()
    cluster.load(CANARY)
    cluster.load(STRICT_MESH)
    for objects in everyone.values():
        cluster.load(objects)
    kubeconfig = cluster.write_kubeconfig(tmp / "kubeconfig")
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl not found on PATH", pytrace=False)
    plugin = Path(sys.executable).parent
    env = {"PATH": os.pathsep.join([str(plugin), str(Path(kubectl).parent), "/usr/bin", "/bin"]),
           "HOME": str(tmp / "home"), "KUBECONFIG": str(kubeconfig), "KUBECTL_MESH_STATE_DIR": str(tmp / "state"),
           "LANG": "C.UTF-8"}
    yield cluster, env
    cluster.stop()


def run(env, persona: str, args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(["kubectl", "mesh", *args, "--context", persona], capture_output=True, text=True,
                          env=env, timeout=120)


@pytest.mark.parametrize("persona", EVERYONE)
def test_permission_matrix(world, persona):
    cluster, env = world
    wrong = []
    for name, args in {**READ_ONLY, **MUTATING}.items():
        writes = len(cluster.requests.writes())
        result = run(env, persona, args)
        code, line = MATRIX[name][persona]
        output = result.stdout + result.stderr
        if result.returncode != code or line not in output:
            wrong.append(f"{name}: exit {result.returncode} (want {code}), want line {line!r} in:\n{output}")
        if "Traceback" in output:
            wrong.append(f"{name}: traceback:\n{output}")
        if len(cluster.requests.writes()) != writes:
            wrong.append(f"{name}: wrote to the cluster ({'dry run' if '--dry-run' in args else 'refused'})")
        if persona in NAMESPACED and name in READ_ONLY and "PERMISSIVE" in output:
            # The mesh-wide policy is STRICT and this persona cannot read it: never a guessed default.
            wrong.append(f"{name}: says PERMISSIVE although the mesh is STRICT:\n{output}")
        if code == 4 and not result.stderr.strip().splitlines()[-1].startswith("error: missing permission"):
            wrong.append(f"{name}: last stderr line should name the missing permissions: {result.stderr!r}")
    assert not wrong, "\n\n".join(wrong)


def test_done_when_reads_never_exit_4_for_the_edit_persona(world):
    """verify, status, diagnose, canary status, circuit-breaker status, mtls NS status: exit 0
    or 1 for a developer with edit (+ the Istio kinds) in their namespace, every skip named."""
    _, env = world
    for name, args in READ_ONLY.items():
        result = run(env, "edit-istio", [*args, "-o", "json"])
        assert result.returncode in (0, 1), f"{name}: {result.stderr}"
        import json

        for check in json.loads(result.stdout).get("checks", []):
            if check["result"] == "skip" and "not readable" in check["message"]:
                assert {"verb", "resource", "namespace"} <= set(check), (name, check)
                assert "needs " in check["message"], (name, check)

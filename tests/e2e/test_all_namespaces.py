"""-A the same way in `verify`, `status` and `diagnose`, through the real kubectl: a section per
namespace with workloads for whoever may list them, and for a namespace-scoped user the
error says what to run instead, a command that then works."""

from __future__ import annotations

import json
import shlex

from tests.e2e.manifests import documents, namespace, workload
from tests.e2e.test_runbook_contract import APP

OTHER = documents(namespace("shop"), workload("cart", "shop"))
VIEW_MY_APP = """
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: dev-view, namespace: my-app}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: dev}]
"""


def test_verify_all_namespaces_gives_a_section_per_namespace_with_workloads(e2e, mesh):
    e2e.cluster.load(documents(APP, OTHER))
    text = mesh("verify", "-A", "--no-istioctl")
    assert text.returncode == 0, text.stdout + text.stderr
    assert text.stdout.startswith("Verifying 2 namespaces with workloads\n")
    assert [line for line in text.stdout.splitlines() if line.startswith("Namespace ")] == [
        "Namespace my-app", "Namespace shop"]
    doc = json.loads(mesh("verify", "-A", "--no-istioctl", "-o", "json").stdout)
    assert [n["name"] for n in doc["namespaces"]] == ["my-app", "shop"] and doc["success"] is True


def test_a_namespace_scoped_user_is_told_what_to_run_instead_of_all_namespaces(e2e, mesh):
    e2e.cluster.load(documents(APP, OTHER, VIEW_MY_APP))
    e2e.cluster.add_user("dev", namespace="my-app")
    e2e.cluster.write_kubeconfig(e2e.kubeconfig)
    for command in (["verify", "--no-istioctl"], ["status"], ["diagnose"]):
        result = mesh(command[0], "-A", *command[1:], "--context", "dev")
        assert result.returncode == 4, (command, result.stdout, result.stderr)
        assert 'User "dev" cannot list resource "namespaces"' in result.stderr
        suffix = (f"; -A reads every namespace, which needs cluster-wide list rights: run it for a namespace you "
                  f"may read instead (kubectl mesh {command[0]} -n my-app --context dev)\n")
        assert result.stderr.endswith(suffix), result.stderr
        doc = json.loads(mesh(command[0], "-A", "--context", "dev", "-o", "json").stdout)
        assert doc["error"]["type"] == "Forbidden" and doc["error"]["message"].endswith(suffix.strip())
        instead = shlex.split(suffix[suffix.index("(kubectl mesh ") + 1:-2])
        rerun = mesh(*instead[2:], *command[1:])
        assert rerun.returncode in (0, 1), (instead, rerun.stdout, rerun.stderr)  # it runs: no longer forbidden

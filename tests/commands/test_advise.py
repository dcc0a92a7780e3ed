"""advise: the guide's rule offline, and the cluster's facts when reachable."""

from __future__ import annotations

import json

import pytest

from kubectl_mesh.commands.advise import decide, parse_needs
from tests.helpers import kube_list, pod, register_kubectl

CRDS = ["get", "customresourcedefinitions.apiextensions.k8s.io", "-o", "name"]
ISTIOD = ["get", "deployments.apps", "-A", "-l", "app=istiod", "-o", "json"]


@pytest.mark.parametrize("needs,answer", [
    ("mtls", "istio"), ("canary", "istio"), ("circuit-breaking", "istio"), ("traffic-shifting", "istio"),
    ("external-https,path-routing", "gateway-api"), ("tracing", "gateway-api"), ("", "gateway-api"),
    ("multi-tenant,circuit-breaker", "istio"),
])
def test_decision_rule(needs, answer):
    assert decide(parse_needs(needs))["recommendation"] == answer


def test_offline_json(mesh_cli, fp):
    result = mesh_cli("advise", "--need", "mtls,canary", "--offline", "-o", "json")
    assert result.exit_code == 0
    doc = result.json()
    assert doc["advice"]["recommendation"] == "istio"
    assert [n["need"] for n in doc["advice"]["needs"]] == ["mtls", "canary"]
    assert doc["advice"]["needs"][1]["istio"] == "Yes — VirtualService weights"
    assert doc["cluster"] is None
    assert len(fp.calls) == 0


def test_unreachable_cluster_still_answers(mesh_cli, fp):
    register_kubectl(fp, CRDS, returncode=1,
                     stderr="The connection to the server localhost:8080 was refused - did you specify the right "
                            "host or port?\n")
    result = mesh_cli("advise", "--need", "tracing")
    assert result.exit_code == 0
    assert result.stdout.startswith("Recommendation: gateway-api")
    assert "- cluster not consulted: The connection to the server localhost:8080 was refused" in result.stdout


def test_cluster_facts_and_sidecar_cost(mesh_cli, fp):
    register_kubectl(fp, CRDS, stdout="customresourcedefinition.apiextensions.k8s.io/virtualservices.networking.istio.io\n"
                                      "customresourcedefinition.apiextensions.k8s.io/httproutes.gateway.networking.k8s.io\n")
    istiod = {"kind": "Deployment", "metadata": {"name": "istiod", "namespace": "istio-system"},
              "spec": {"template": {"spec": {"containers": [{"image": "docker.io/istio/pilot:1.32.0"}]}}},
              "status": {"readyReplicas": 1}}
    register_kubectl(fp, ISTIOD, stdout=kube_list(istiod))
    register_kubectl(fp, ["get", "pods", "-n", "my-app", "-o", "json"],
                     stdout=kube_list(*[pod(f"p{i}") for i in range(4)]))
    result = mesh_cli("advise", "my-app", "--need", "mtls", "-o", "json")
    doc = result.json()
    assert result.exit_code == 0
    assert doc["cluster"]["istioInstalled"] is True
    assert doc["cluster"]["istioVersions"] == ["1.32.0"]
    assert doc["cluster"]["gatewayApiCrds"] == ["httproutes.gateway.networking.k8s.io"]
    assert doc["cluster"]["sidecarCost"] == {"namespace": "my-app", "pods": 4, "memoryMB": 200, "latencyPerHopMs": 2}
    cost = [c for c in doc["checks"] if c["id"] == "sidecar-cost"][0]
    assert "4 pods x ~50 MB = ~200 MB memory, ~2 ms added per hop" in cost["message"]


def test_istio_missing_when_needed_is_a_warning(mesh_cli, fp):
    register_kubectl(fp, CRDS, stdout="")
    register_kubectl(fp, ISTIOD, stdout=kube_list())
    result = mesh_cli("advise", "--need", "canary", "-o", "json")
    check = [c for c in result.json()["checks"] if c["id"] == "istio-installed"][0]
    assert check["result"] == "warn"
    assert result.exit_code == 0


def test_yaml_output(mesh_cli):
    import yaml

    doc = yaml.safe_load(mesh_cli("advise", "--need", "mtls", "--offline", "-o", "yaml").stdout)
    assert doc["advice"]["recommendation"] == "istio"
    assert json.dumps(doc)

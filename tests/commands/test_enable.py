"""enable: exact kubectl calls, dry run, idempotence, refusals, errors (pytest-subprocess)."""

from __future__ import annotations

import json

from tests.helpers import deployment_with_pods, kube_list, namespace, register_kubectl

BATCH = ["get", "namespaces,pods,services,deployments.apps,statefulsets.apps,daemonsets.apps,replicasets.apps,"
         "virtualservices.networking.istio.io,destinationrules.networking.istio.io,"
         "serviceentries.networking.istio.io,gateways.networking.istio.io,sidecars.networking.istio.io,"
         "peerauthentications.security.istio.io,authorizationpolicies.security.istio.io",
         "-n", "my-app", "-o", "json"]
ROOT_PA = ["get", "peerauthentications.security.istio.io", "-n", "istio-system", "-o", "json"]


def test_enable_dry_run(fp, mesh_cli):
    objs = [namespace("my-app", resourceVersion="7"), *deployment_with_pods("web"), *deployment_with_pods("api")]
    register_kubectl(fp, BATCH, stdout=kube_list(*objs))
    register_kubectl(fp, ROOT_PA, stdout=kube_list())
    result = mesh_cli("enable", "my-app", "--dry-run", "-o", "json")
    print(result.stdout, result.stderr)
    assert result.exit_code == 0

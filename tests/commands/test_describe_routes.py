"""describe and routes: istioctl's real output parsed; exit codes; istioctl missing."""

from __future__ import annotations

import pytest

from tests.helpers import DATA

ROUTES_DIR = DATA / "istioctl/routes/istio-gateway-http-route-prefix"


def test_describe_json_has_sections_and_warnings(fp, mesh_cli):
    text = (DATA / "istioctl/describe/pod-canary-stable.txt").read_text()
    fp.register(["istioctl", "x", "describe", "pod", "my-app-7c9d8f6b5-x2x7k", "-n", "my-app"], stdout=text)
    result = mesh_cli("describe", "my-app-7c9d8f6b5-x2x7k", "-n", "my-app", "-o", "json")
    assert result.exit_code == 0
    doc = result.json()["describe"]
    assert doc["pod"]["name"] == "my-app-7c9d8f6b5-x2x7k"
    assert doc["pod"]["namespace"] == "my-app"
    service = doc["services"][0]
    assert service["destinationRule"]["matchingSubsets"] == ["stable"]
    assert service["virtualServices"][0]["routes"] == [{"host": "my-app", "subset": "stable", "weight": 90}]
    assert doc["effectivePeerAuthentication"]["workloadMtlsMode"] == "STRICT"
    assert doc["warnings"] == []


def test_describe_text_shows_istioctl_output_then_checks(fp, mesh_cli):
    text = (DATA / "istioctl/describe/pod-subset-mismatch.txt").read_text()
    fp.register(["istioctl", "x", "describe", "pod", "backend-api-6d5b9c7f4d-q8zrl", "-n", "my-app"], stdout=text)
    result = mesh_cli("describe", "backend-api-6d5b9c7f4d-q8zrl", "-n", "my-app")
    assert result.exit_code == 1
    assert result.stdout.startswith("Pod: backend-api-6d5b9c7f4d-q8zrl\n")
    assert "✗ pod/backend-api-6d5b9c7f4d-q8zrl (pod backend-api-6d5b9c7f4d-q8zrl): Warning: Route to UNKNOWN subset v4" \
        in result.stdout


def test_describe_istioctl_missing_exits_4(fp, mesh_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    fp.pass_command(["istioctl", fp.any()])
    result = mesh_cli("describe", "web-1", "-n", "my-app")
    assert result.exit_code == 4
    assert result.stderr.startswith("error: istioctl not found on PATH")


def test_describe_failure_is_one_line(fp, mesh_cli):
    fp.register(["istioctl", "x", "describe", "pod", "web-1", "-n", "my-app"], returncode=1,
                stderr='Error: failed to retrieve pod: pods "web-1" not found\n')
    result = mesh_cli("describe", "web-1", "-n", "my-app")
    assert result.exit_code == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert 'pods "web-1" not found' in result.stderr


def test_bad_pod_name_is_exit_2(fp, mesh_cli):
    assert mesh_cli("describe", "Web_1").exit_code == 2
    assert mesh_cli("routes", "Web_1").exit_code == 2
    assert len(fp.calls) == 0


def test_routes_json_rows(fp, mesh_cli):
    fp.register(["istioctl", "proxy-config", "routes", "httpbin-1", "-n", "default"],
                stdout=(ROUTES_DIR / "output.txt").read_text())
    result = mesh_cli("routes", "httpbin-1", "-n", "default", "-o", "json")
    assert result.exit_code == 0
    rows = result.json()["routes"]
    assert rows[0] == {"name": "http.8080", "vhostName": "httpbin.example.com:80",
                       "domains": "httpbin.example.com", "match": "/get*", "virtualService": "httpbin.default"}
    assert [r["match"] for r in rows[1:]] == ["/stats/prometheus*", "/healthz/ready*"]
    assert all(r["name"] == "" for r in rows[1:])


def test_routes_name_filter_is_passed_on(fp, mesh_cli):
    fp.register(["istioctl", "--context", "prod", "proxy-config", "routes", "web-1", "-n", "my-app",
                 "--name", "http.8080"],
                stdout="NAME VHOST NAME DOMAINS MATCH VIRTUAL SERVICE\n")
    result = mesh_cli("routes", "web-1", "-n", "my-app", "--name", "http.8080", "--context", "prod", "-o", "yaml")
    assert result.exit_code == 0
    assert "routes:" in result.stdout


@pytest.mark.parametrize("output", ["json", "yaml", "text"])
def test_empty_routes_is_a_warning(fp, mesh_cli, output):
    fp.register(["istioctl", "proxy-config", "routes", "web-1", "-n", "my-app"], stdout="")
    result = mesh_cli("routes", "web-1", "-n", "my-app", "-o", output)
    assert result.exit_code == 0
    assert "has no routes" in result.stdout


ISTIOCTL_FORBIDDEN = ('Error: failed to execute command on istiod: pods is forbidden: User "dev" cannot list resource '
                      '"pods" in API group "" in the namespace "istio-system"\n')


def test_describe_refused_by_istioctl_falls_back_to_the_namespace_objects(fp, mesh_cli):
    from tests.commands.istio_objects import dr, service, version_pods, vs
    from tests.helpers import ROOT_PA, register_cluster

    pods = version_pods("v1", 1)
    pod = next(p for p in pods if p["kind"] == "Pod")["metadata"]["name"]
    fp.register(["istioctl", "x", "describe", "pod", pod, "-n", "my-app"], returncode=1, stderr=ISTIOCTL_FORBIDDEN)
    subsets = [{"name": "stable", "labels": {"version": "v1"}}, {"name": "canary", "labels": {"version": "v2"}}]
    route = [{"route": [{"destination": {"host": "my-app", "subset": "stable"}, "weight": 90},
                        {"destination": {"host": "my-app", "subset": "canary"}, "weight": 10}]}]
    register_cluster(fp, [*pods, service(), dr(subsets=subsets), vs(http=route),
                          {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "my-app"}}])
    fp.register(["kubectl", *ROOT_PA], stdout='{"items": []}')
    result = mesh_cli("describe", pod, "-n", "my-app", "-o", "json")
    assert result.exit_code == 0, result.stderr
    doc = result.json()
    skip = next(c for c in doc["checks"] if c["id"] == "istioctl-describe")
    assert skip["result"] == "skip"
    assert "needs list pods in istio-system" in skip["message"]
    assert (skip["verb"], skip["resource"], skip["namespace"]) == ("list", "pods", "istio-system")
    described = doc["describe"]
    assert described["source"] == "kubectl-mesh"
    assert described["services"] == [{"name": "my-app", "ports": ["80/TCP"]}]
    assert described["destinationRules"][0]["matchingSubsets"] == ["stable"]
    assert [s["percent"] for s in described["virtualServices"][0]["routes"][0]] == [90, 10]
    assert described["mtls"]["mode"] == "PERMISSIVE"


def test_routes_refused_by_istioctl_says_which_permission(fp, mesh_cli):
    fp.register(["istioctl", "proxy-config", "routes", "web-1", "-n", "my-app"], returncode=1,
                stderr='Error: pods "web-1" is forbidden: User "dev" cannot create resource "pods/portforward" in API '
                       'group "" in the namespace "my-app"\n')
    result = mesh_cli("routes", "web-1", "-n", "my-app", "-o", "json")
    assert result.exit_code == 0, result.stderr
    check = result.json()["checks"][0]
    assert check["result"] == "skip" and "needs create pods/portforward in my-app" in check["message"]
    assert "kubectl mesh describe web-1 -n my-app" in check["message"]


def test_verify_skips_istioctl_checks_istioctl_was_refused_naming_the_permission(fp, mesh_cli):
    from tests.helpers import deployment_with_pods, namespace, register_cluster

    objs = [namespace("my-app", {"istio-injection": "enabled"}), *deployment_with_pods("web", sidecar="container")]
    register_cluster(fp, objs)
    fp.register(["istioctl", "x", "describe", "pod", fp.any()], returncode=1, stderr=ISTIOCTL_FORBIDDEN)
    # routes runs beside describe (verify runs a workload's two calls side by side)
    fp.register(["istioctl", "proxy-config", "routes", fp.any()], returncode=1, stderr=ISTIOCTL_FORBIDDEN)
    result = mesh_cli("verify", "my-app", "-o", "json")
    assert result.exit_code == 0, result.stderr
    check = next(c for c in result.json()["checks"] if c["id"] == "istioctl-failed")
    assert check["result"] == "skip" and "needs list pods in istio-system" in check["message"]


# -- a workload or a selector stands for one of its pods --------------------------------------
def _pods_of_web():
    from tests.helpers import deployment_with_pods

    deploy, _, first, second = deployment_with_pods("web", sidecar="container")
    first["status"]["conditions"] = [{"type": "Ready", "status": "False"}]  # not ready: the other is picked
    return deploy, [first, second]


def test_describe_a_deployment_picks_one_ready_meshed_pod_and_names_it(fp, mesh_cli):
    import json

    from tests.helpers import kube_list

    deploy, pods = _pods_of_web()
    fp.register(["kubectl", "get", "deployments.apps", "web", "-n", "my-app", "-o", "json"], stdout=json.dumps(deploy),
                occurrences=2)
    fp.register(["kubectl", "get", "pods", "-n", "my-app", "-l", "app=web", "-o", "json"], stdout=kube_list(*pods),
                occurrences=2)
    text = (DATA / "istioctl/describe/pod-canary-stable.txt").read_text()
    fp.register(["istioctl", "x", "describe", "pod", "web-5d9f8c7b6-p1", "-n", "my-app"], stdout=text, occurrences=2)
    result = mesh_cli("describe", "deploy/web", "-n", "my-app", "-o", "json")
    assert result.exit_code == 0, result.stderr
    doc = result.json()
    assert doc["pod"] == {"name": "web-5d9f8c7b6-p1", "namespace": "my-app"}
    assert doc["workload"] == {"kind": "Deployment", "name": "web", "namespace": "my-app", "ref": "deployment/web"}
    text_out = mesh_cli("describe", "deploy/web", "-n", "my-app").stdout
    assert text_out.startswith("pod web-5d9f8c7b6-p1, one of the 2 pods of deployment/web")


def test_routes_with_a_selector(fp, mesh_cli):
    from tests.helpers import kube_list

    _, pods = _pods_of_web()
    fp.register(["kubectl", "get", "pods", "-n", "my-app", "-l", "app=web,version in (v1,v2)", "-o", "json"],
                stdout=kube_list(*pods))
    fp.register(["istioctl", "proxy-config", "routes", "web-5d9f8c7b6-p1", "-n", "my-app"],
                stdout=(ROUTES_DIR / "output.txt").read_text())
    result = mesh_cli("routes", "-l", "app=web,version in (v1,v2)", "-n", "my-app", "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["pod"]["name"] == "web-5d9f8c7b6-p1"


def test_a_workload_without_pods_is_one_line(fp, mesh_cli):
    import json

    from tests.helpers import kube_list

    deploy, _ = _pods_of_web()
    fp.register(["kubectl", "get", "deployments.apps", "web", "-n", "my-app", "-o", "json"], stdout=json.dumps(deploy))
    fp.register(["kubectl", "get", "pods", "-n", "my-app", "-l", "app=web", "-o", "json"], stdout=kube_list())
    result = mesh_cli("routes", "deploy/web", "-n", "my-app")
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: no running pod of deployment/web in namespace my-app"


@pytest.mark.parametrize("argv,needle", [
    (["describe", "-l", "app=web", "web-1"], "give a pod (or deploy/NAME) or -l SELECTOR, not both"),
    (["routes", "-l", "app==,,"], 'invalid label selector "app==,,"'),
    (["describe"], "missing POD"),
    (["routes", "cronjob/x"], 'invalid workload kind "cronjob"'),
])
def test_bad_targets_are_exit_2_before_anything_runs(fp, mesh_cli, argv, needle):
    result = mesh_cli(*argv)
    assert result.exit_code == 2 and needle in result.stderr
    assert not fp.calls

"""verify: the guide's checks over one batched read, istioctl for one pod per workload."""

from __future__ import annotations

from tests.helpers import DATA, deployment_with_pods, namespace, pod, register_cluster

ENABLED = namespace("my-app", {"istio-injection": "enabled"})
DESCRIBE_OK = (DATA / "istioctl/describe/pod-canary-stable.txt").read_text()
DESCRIBE_BAD = (DATA / "istioctl/describe/pod-subset-mismatch.txt").read_text()
ROUTES = (DATA / "istioctl/routes/istio-gateway-http-route-prefix/output.txt").read_text()


def _by_id(doc, check_id):
    return [c for c in doc["checks"] if c["id"] == check_id]


def test_all_meshed_passes_and_reads_once(fp, mesh_cli):
    objs = [ENABLED, *deployment_with_pods("web", sidecar="container"),
            *deployment_with_pods("api", sidecar="native")]
    register_cluster(fp, objs)
    result = mesh_cli("verify", "my-app", "--no-istioctl", "-o", "json")
    assert result.exit_code == 0, result.stdout
    doc = result.json()
    assert doc["success"] is True
    injected = _by_id(doc, "sidecar-injected")
    assert [(c["subject"], c["result"]) for c in injected] == [("deployment/web", "pass"), ("deployment/api", "pass")]
    assert "2/2 pods have istio-proxy (native)" in injected[1]["message"]
    assert _by_id(doc, "namespace-labelled")[0]["result"] == "pass"
    mtls = _by_id(doc, "mtls-mode")[0]
    assert mtls["message"] == "mTLS mode PERMISSIVE (mesh default)"
    workloads = {w["name"]: w for w in doc["verify"]["workloads"]}
    assert workloads["api"]["layout"] == ["native"] and workloads["web"]["meshed"] == 2
    assert len(fp.calls) == 4  # the namespace's kinds, its Namespace, the root policies, Istio's ConfigMaps


def test_pods_created_before_the_label_are_named_with_their_workload(fp, mesh_cli):
    objs = [ENABLED, *deployment_with_pods("web", sidecar="container"), *deployment_with_pods("api")]
    register_cluster(fp, objs)
    result = mesh_cli("verify", "my-app", "--no-istioctl")
    assert result.exit_code == 1
    assert ("✗ deployment/api: 2 of 2 pods lack istio-proxy (api-5d9f8c7b6-p0, api-5d9f8c7b6-p1); "
            "they were created before injection was enabled") in result.stdout
    assert "    kubectl rollout restart deployment/api -n my-app" in result.stdout
    assert result.stdout.rstrip().endswith("failed")


def test_unlabelled_namespace_fails(fp, mesh_cli):
    register_cluster(fp, [namespace("my-app"), *deployment_with_pods("web")])
    result = mesh_cli("verify", "my-app", "--no-istioctl", "-o", "json")
    assert result.exit_code == 1
    check = _by_id(result.json(), "namespace-labelled")[0]
    assert check["result"] == "fail"
    assert check["hint"] == "kubectl mesh enable my-app"


def test_missing_namespace_fails(fp, mesh_cli):
    register_cluster(fp, [])
    result = mesh_cli("verify", "my-app", "--no-istioctl", "-o", "json")
    assert result.exit_code == 1
    assert _by_id(result.json(), "namespace-exists")[0]["message"] == "namespace my-app not found"


def test_opted_out_workload_is_a_warning_not_a_failure(fp, mesh_cli):
    objs = [ENABLED, *deployment_with_pods("legacy", labels={"app": "legacy", "sidecar.istio.io/inject": "false"})]
    register_cluster(fp, objs)
    result = mesh_cli("verify", "my-app", "--no-istioctl", "-o", "json")
    assert result.exit_code == 0
    assert _by_id(result.json(), "sidecar-injected")[0]["result"] == "warn"


def test_proxy_not_ready_fails(fp, mesh_cli):
    register_cluster(fp, [ENABLED, *deployment_with_pods("web", sidecar="container", proxy_ready=False)])
    result = mesh_cli("verify", "my-app", "--no-istioctl", "-o", "json")
    assert result.exit_code == 1
    assert _by_id(result.json(), "proxy-ready")[0]["result"] == "fail"


def test_strict_mtls_with_unmeshed_pods_fails(fp, mesh_cli):
    strict = {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
              "metadata": {"name": "strict-mtls", "namespace": "my-app"}, "spec": {"mtls": {"mode": "STRICT"}}}
    register_cluster(fp, [ENABLED, strict, pod("loner")])
    result = mesh_cli("verify", "my-app", "--no-istioctl", "-o", "json")
    doc = result.json()
    assert result.exit_code == 1
    assert _by_id(doc, "mtls-mode")[0]["message"] == ("mTLS mode STRICT "
                                                     "(PeerAuthentication my-app/strict-mtls (namespace-wide))")
    assert _by_id(doc, "mtls-strict-without-sidecar")[0]["result"] == "fail"


def test_istioctl_runs_once_per_workload_and_warnings_become_checks(fp, mesh_cli):
    objs = [ENABLED, *deployment_with_pods("web", sidecar="container", pods=3),
            *deployment_with_pods("api", sidecar="container", pods=2)]
    register_cluster(fp, objs)
    fp.register(["istioctl", "x", "describe", "pod", "web-5d9f8c7b6-p0", "-n", "my-app"], stdout=DESCRIBE_OK)
    fp.register(["istioctl", "proxy-config", "routes", "web-5d9f8c7b6-p0", "-n", "my-app"], stdout=ROUTES)
    fp.register(["istioctl", "x", "describe", "pod", "api-5d9f8c7b6-p0", "-n", "my-app"], stdout=DESCRIBE_BAD)
    fp.register(["istioctl", "proxy-config", "routes", "api-5d9f8c7b6-p0", "-n", "my-app"], stdout=ROUTES)
    result = mesh_cli("verify", "my-app", "-o", "json")
    doc = result.json()
    assert fp.call_count(["istioctl", "x", "describe", "pod", fp.any()]) == 2
    ok = [c for c in doc["checks"] if c["category"] == "istioctl" and c["subject"] == "deployment/web"]
    assert [c["result"] for c in ok] == ["pass", "pass"]
    assert "workload mTLS STRICT" in ok[0]["message"]
    assert "3 routes in the proxy, 1 from VirtualServices" in ok[1]["message"]
    bad = {c["id"] for c in doc["checks"] if c["subject"] == "deployment/api" and c["result"] == "fail"}
    assert {"istioctl-describe-proxy-not-ready", "istioctl-describe-unknown-subset",
            "istioctl-describe-subset-without-destination-rule"} <= bad
    assert result.exit_code == 1


def test_istioctl_missing_is_a_warning(fp, mesh_cli, tmp_path, monkeypatch):
    register_cluster(fp, [ENABLED, *deployment_with_pods("web", sidecar="container")])
    # istioctl really runs, from a PATH where it does not exist.
    monkeypatch.setenv("PATH", str(tmp_path))
    fp.pass_command(["istioctl", fp.any()], occurrences=4)
    result = mesh_cli("verify", "my-app", "-o", "json")
    assert result.exit_code == 0
    check = _by_id(result.json(), "istioctl-present")[0]
    assert check["result"] == "warn"
    assert "istioctl not found" in check["message"]


def test_istioctl_failure_for_one_pod_is_a_warning(fp, mesh_cli):
    register_cluster(fp, [ENABLED, *deployment_with_pods("web", sidecar="container")])
    fp.register(["istioctl", "x", "describe", "pod", fp.any()], returncode=1,
                stderr='Error: failed to retrieve pod: pods "web-5d9f8c7b6-p0" not found\n')
    result = mesh_cli("verify", "my-app", "-o", "json")
    assert result.exit_code == 0
    assert _by_id(result.json(), "istioctl-failed")[0]["result"] == "warn"


def test_context_namespace_is_the_default(fp, mesh_cli):
    fp.register(["kubectl", "config", "view", "--minify", "-o", "jsonpath={..namespace}"], stdout="my-app")
    register_cluster(fp, [ENABLED, *deployment_with_pods("web", sidecar="container")])
    result = mesh_cli("verify", "--no-istioctl")
    assert result.exit_code == 0
    # a read-only command may take the context's namespace, and says so (on stderr: stdout stays data)
    assert result.stderr.startswith('namespace "my-app" (the context\'s; give NAMESPACE or -n to choose)\n')


def test_without_a_context_namespace_default_is_used_and_said(fp, mesh_cli):
    fp.register(["kubectl", "config", "view", "--minify", "-o", "jsonpath={..namespace}"], stdout="")
    register_cluster(fp, [namespace("default"), *deployment_with_pods("web", "default", sidecar="container")],
                     ns="default")
    result = mesh_cli("verify", "--no-istioctl", "-o", "json")
    assert result.json()["success"] in (True, False)  # stdout is still one JSON document
    assert 'namespace "default" (the context names none' in result.stderr


def test_all_namespaces_is_refused_as_usage(mesh_cli):
    result = mesh_cli("verify", "-A")
    assert result.exit_code == 2
    assert "status -A" in result.stderr


def test_proxies_older_than_the_injectors_need_a_restart(fp, mesh_cli):
    import json

    injector = {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "istio-sidecar-injector", "namespace": "istio-system"},
                "data": {"values": json.dumps({"global": {"hub": "docker.io/istio", "tag": "1.33.0",
                                                          "proxy": {"image": "proxyv2"}}})}}
    objs = [ENABLED, *deployment_with_pods("web", sidecar="container")]  # proxyv2:1.32.0
    register_cluster(fp, objs, configmaps=[injector])
    result = mesh_cli("verify", "my-app", "--no-istioctl", "-o", "json")
    assert result.exit_code == 0  # a warning: the pods are in the mesh, with the old proxy
    [check] = _by_id(result.json(), "proxy-current")
    assert (check["subject"], check["result"]) == ("deployment/web", "warn")
    assert "run docker.io/istio/proxyv2:1.32.0, the injector gives docker.io/istio/proxyv2:1.33.0 now" \
        in check["message"]
    assert check["hint"].startswith("kubectl rollout restart deployment/web -n my-app")

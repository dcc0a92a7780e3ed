"""verify: the guide's checks over one batched read, istioctl for one pod per workload."""

from __future__ import annotations

from tests.helpers import (
    CONFIGMAPS_READ,
    DATA,
    batch_read,
    calls_made,
    deployment_with_pods,
    kube_list,
    namespace,
    pod,
    register_cluster,
)

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
    (state,) = doc["namespaces"]
    assert state["name"] == "my-app" and state["mtls"]["mode"] == "PERMISSIVE"
    workloads = {w["name"]: w for w in state["workloads"]}
    assert workloads["api"]["layout"] == ["native"] and workloads["web"]["pods"]["meshed"] == 2
    assert len(fp.calls) == 4  # the namespace's kinds, its Namespace, the root policies, Istio's ConfigMaps


def test_pods_created_before_the_label_are_named_with_their_workload(fp, mesh_cli):
    objs = [ENABLED, *deployment_with_pods("web", sidecar="container"), *deployment_with_pods("api")]
    register_cluster(fp, objs)
    result = mesh_cli("verify", "my-app", "--no-istioctl")
    assert result.exit_code == 1
    assert ("✗ deployment/api: 2 of 2 pods lack istio-proxy (api-5d9f8c7b6-p0, api-5d9f8c7b6-p1); "
            "they were created before injection was enabled") in result.stdout
    assert "    kubectl rollout restart deployment/api -n my-app (or: kubectl mesh enable my-app)" in result.stdout
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
    # the routes call runs beside describe (they are independent): one warning for the pod
    fp.register(["istioctl", "proxy-config", "routes", fp.any()], returncode=1,
                stderr='Error: failed to retrieve pod: pods "web-5d9f8c7b6-p0" not found\n')
    result = mesh_cli("verify", "my-app", "-o", "json")
    assert result.exit_code == 0
    assert [c["result"] for c in _by_id(result.json(), "istioctl-failed")] == ["warn"]


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


READ_ALL = ["kubectl", "get", "namespaces," + batch_read("x")[1], "-A", "-o", "json"]


def test_all_namespaces_verifies_each_with_workloads_a_section_each(fp, mesh_cli):
    objects = [ENABLED, *deployment_with_pods("web", sidecar="container"),
               namespace("batch"), *deployment_with_pods("report", "batch"),
               namespace("empty"), namespace("kube-system"), *deployment_with_pods("dns", "kube-system")]
    fp.register(READ_ALL, stdout=kube_list(*objects), occurrences=2)
    fp.register(["kubectl", *CONFIGMAPS_READ], stdout=kube_list(), occurrences=2)
    result = mesh_cli("verify", "-A", "--no-istioctl", "-o", "json")
    assert result.exit_code == 1  # batch is not labelled
    doc = result.json()
    assert [n["name"] for n in doc["namespaces"]] == ["batch", "my-app"]
    assert calls_made(fp) == [READ_ALL, ["kubectl", *CONFIGMAPS_READ]]
    text = mesh_cli("verify", "-A", "--no-istioctl").stdout
    assert text.startswith("Verifying 2 namespaces with workloads\n\nNamespace batch\n")
    assert "\n\nNamespace my-app\n" in text
    assert text.index("namespace batch is not labelled") < text.index("Namespace my-app")


def test_all_namespaces_and_a_namespace_is_a_usage_error(fp, mesh_cli):
    result = mesh_cli("verify", "my-app", "-A")
    assert result.exit_code == 2
    assert "give a namespace or -A/--all-namespaces, not both" in result.stderr
    assert not fp.calls


def test_a_canary_subset_with_traffic_and_no_ready_pod_fails(fp, mesh_cli):
    from tests.commands.istio_objects import dr, service, subset, version_pods, vs, weighted

    roles = {"kubectl-mesh.io/canary": '{"stable": "stable", "canary": "canary"}'}
    objs = [ENABLED, service(), *version_pods("v1", 2), *version_pods("v2", 1, ready=False),
            dr(subsets=[subset("stable", "v1"), subset("canary", "v2")]),
            vs(http=[weighted(("stable", 90), ("canary", 10))], annotations=roles)]
    register_cluster(fp, objs)
    result = mesh_cli("verify", "my-app", "--no-istioctl", "-o", "json")
    assert result.exit_code == 1
    doc = result.json()
    failed = [c for c in doc["checks"] if c["result"] == "fail"]
    assert [(c["id"], c["subject"]) for c in failed] == [("canary-subset-pods", "subset/canary")]
    assert failed[0]["message"] == ("service my-app: subset canary receives 10% but selects no ready pod "
                                    "(version=v2, 1 pod): its requests fail with 503")
    assert doc["namespaces"][0]["canaries"][0]["canary"]["weight"] == 10
    passed = [c for c in doc["checks"] if c["id"] == "canary-subset-pods" and c["result"] == "pass"]
    assert passed[0]["message"] == "service my-app: subset stable receives 90%: 2/2 pods ready"


def test_an_opted_out_pod_under_strict_is_told_to_drop_the_opt_out(fp, mesh_cli):
    strict = {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
              "metadata": {"name": "default", "namespace": "my-app"}, "spec": {"mtls": {"mode": "STRICT"}}}
    legacy = deployment_with_pods("legacy", pods=1, labels={"app": "legacy", "sidecar.istio.io/inject": "false"})
    register_cluster(fp, [ENABLED, strict, *deployment_with_pods("web", sidecar="container"), *legacy])
    result = mesh_cli("verify", "my-app", "--no-istioctl", "-o", "json")
    check = _by_id(result.json(), "mtls-strict-without-sidecar")[0]
    assert check["message"] == ("deployment/legacy: STRICT mTLS applies but legacy-5d9f8c7b6-p0 has no sidecar; "
                                "meshed clients get connection refused")
    assert check["hint"].startswith("remove the opt-out (sidecar.istio.io/inject=false in its pod template's labels)")
    assert ("kubectl patch deployment/legacy -n my-app --type json -p '[{\"op\": \"remove\", \"path\": "
            "\"/spec/template/metadata/labels/sidecar.istio.io~1inject\"}]'") in check["hint"]
    assert "delete" not in check["hint"]


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

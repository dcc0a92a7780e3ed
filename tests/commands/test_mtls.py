"""mtls: the namespace-wide PeerAuthentication, the checks before STRICT, status; calls, exit codes, JSON."""

from __future__ import annotations

import json

import pytest

from tests.commands.istio_objects import (
    CONFLICT,
    CREATE,
    NS,
    PA_RESOURCE,
    Writes,
    calls,
    patch_args,
    register_patch,
    register_write,
)
from tests.helpers import (
    CORE_KINDS,
    ISTIO_KINDS,
    ROOT_PA,
    api_calls,
    batch_read,
    deployment_with_pods,
    kube_list,
    namespace,
    namespace_read,
    pod,
    register_cluster,
    register_kubectl,
)

ALL_READ = ["get", "namespaces," + CORE_KINDS + "," + ISTIO_KINDS, "-A", "-o", "json"]


def pa(name="default", ns=NS, mode="PERMISSIVE", *, selector=None, ports=None, rv="7",
       created="2024-01-01T00:00:00Z", **meta):
    spec: dict = {}
    if mode:
        spec["mtls"] = {"mode": mode}
    if selector:
        spec["selector"] = {"matchLabels": selector}
    if ports:
        spec["portLevelMtls"] = {str(p): {"mode": m} for p, m in ports.items()}
    return {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
            "metadata": {"name": name, "namespace": ns, "resourceVersion": rv, "creationTimestamp": created, **meta},
            "spec": spec}


def meshed_namespace(*extra):
    return [namespace(NS, {"istio-injection": "enabled"}), *deployment_with_pods("web", sidecar="container"),
            *deployment_with_pods("api", sidecar="native"), *extra]


def register_all(fp, objects, occurrences=1):
    fp.register(["kubectl", *ALL_READ], stdout=kube_list(*objects), occurrences=occurrences)


# -- strict ----------------------------------------------------------------------------------------
def test_strict_creates_the_namespace_policy(fp, mesh_cli):
    register_all(fp, [*meshed_namespace(), pa("default", "istio-system", "PERMISSIVE")])
    writes = Writes()
    register_write(fp, writes, "create")
    result = mesh_cli("mtls", NS, "strict", "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert calls(fp) == [["kubectl", *ALL_READ], ["kubectl", *CREATE]]  # one read, all namespaces
    assert writes.sent == [{"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
                            "metadata": {"name": "default", "namespace": NS}, "spec": {"mtls": {"mode": "STRICT"}}}]
    doc = result.json()
    assert doc["success"] is True
    assert doc["namespaces"][0]["mtls"] == {"mode": "STRICT", "source": "PeerAuthentication my-app/default "
                                            "(namespace-wide)", "ports": []}  # as the command leaves it
    assert doc["requested"] == {"namespaces": [{"name": NS, "mtls": {"mode": "STRICT"}}]}
    assert doc["previous"] == {"namespaces": [{"name": NS, "mtls": {
        "mode": "PERMISSIVE", "source": "PeerAuthentication istio-system/default (mesh-wide)", "ports": []}}]}
    assert doc["peerAuthentication"] == {"name": "default", "namespace": NS}
    assert doc["clientsWithoutSidecar"] == []
    assert [(c["id"], c["result"]) for c in doc["checks"]] == [
        ("current-mode", "pass"), ("sidecars", "pass"), ("clients", "pass")]
    assert doc["plan"][0] == {"action": "mtls", "target": "peerauthentication/default",
                              "command": "kubectl create -f - -o json", "reason": "namespace-wide mode STRICT",
                              "status": "applied"}


def test_strict_updates_the_existing_policy_whatever_its_name(fp, mesh_cli):
    existing = pa("strict-mtls", mode="PERMISSIVE", labels={"owner": "platform"})
    workload = pa("legacy-port", selector={"app": "web"}, ports={8080: "PERMISSIVE"}, mode=None)
    register_all(fp, [*meshed_namespace(), existing, workload])
    writes = Writes()
    register_patch(fp, writes, existing)
    result = mesh_cli("mtls", "strict", "-n", NS, "-o", "json")
    assert result.exit_code == 0, result.stderr
    sent = writes.sent[0]
    assert sent["metadata"]["name"] == "strict-mtls" and sent["metadata"]["resourceVersion"] == "7"
    assert sent["metadata"]["labels"] == {"owner": "platform"}
    assert sent["spec"] == {"mtls": {"mode": "STRICT"}}
    doc = result.json()
    override = next(c for c in doc["checks"] if c["id"] == "workload-override")
    assert override["result"] == "warn" and "port 8080: PERMISSIVE" in override["message"]
    assert doc["plan"][0]["restore"].startswith("kubectl replace -f ")


def test_strict_refused_while_pods_lack_sidecars(fp, mesh_cli):
    legacy = deployment_with_pods("legacy")  # no sidecar
    stray = pod("debug", NS)  # no owner
    register_all(fp, [*meshed_namespace(*legacy, stray)])
    result = mesh_cli("mtls", NS, "strict", "-o", "json")
    assert result.exit_code == 3
    assert len(api_calls(fp)) == 1  # no write
    doc = result.json()
    assert doc["success"] is False and doc["plan"] == []
    check = next(c for c in doc["checks"] if c["id"] == "sidecars")
    assert check["result"] == "fail"
    assert check["pods"] == [{"pod": "legacy-5d9f8c7b6-p0", "workload": "deployment/legacy"},
                             {"pod": "legacy-5d9f8c7b6-p1", "workload": "deployment/legacy"},
                             {"pod": "debug", "workload": "pod/debug"}]
    assert "3 of 7 pods have no sidecar in my-app: deployment/legacy (legacy-5d9f8c7b6-p0, legacy-5d9f8c7b6-p1), " \
           "pod/debug (debug)" in check["message"]
    assert check["hint"].startswith("enable injection in my-app and restart the workloads: kubectl mesh enable my-app")
    assert doc["refused"] is True and [c["id"] for c in doc["refusedBy"]] == ["sidecars"]
    state = doc["namespaces"][0]
    assert state["mtls"]["mode"] == "PERMISSIVE"  # the live mode, not the requested one
    assert doc["requested"]["namespaces"][0]["mtls"]["mode"] == "STRICT"
    assert {w["ref"]: w["pods"]["meshed"] for w in state["workloads"]}["deployment/legacy"] == 0


def test_strict_refusal_text_and_force(fp, mesh_cli):
    register_all(fp, [*meshed_namespace(*deployment_with_pods("legacy"))], occurrences=2)
    refused = mesh_cli("mtls", NS, "strict")
    assert refused.exit_code == 3
    assert "✗ 2 of 6 pods have no sidecar in my-app: deployment/legacy" in refused.stdout
    assert "    enable injection in my-app and restart the workloads: kubectl mesh enable my-app" in refused.stdout
    assert "refused (use --force to override)" in refused.stdout
    writes = Writes()
    register_write(fp, writes, "create")
    forced = mesh_cli("mtls", NS, "strict", "--force")
    assert forced.exit_code == 0
    assert "! 2 of 6 pods have no sidecar in my-app" in forced.stdout
    assert writes.sent[0]["spec"] == {"mtls": {"mode": "STRICT"}}


def test_strict_warns_about_clients_in_other_namespaces(fp, mesh_cli):
    others = [namespace("shop"), *deployment_with_pods("frontend", "shop"),
              namespace("kube-system"), *deployment_with_pods("coredns", "kube-system"),
              namespace("meshed", {"istio-injection": "enabled"}), *deployment_with_pods("ok", "meshed", sidecar="container")]
    register_all(fp, [*meshed_namespace(), pa(mode="PERMISSIVE"), *others])
    register_patch(fp, Writes(), pa(mode="PERMISSIVE"))
    result = mesh_cli("mtls", NS, "strict", "-o", "json")
    assert result.exit_code == 0
    doc = result.json()
    check = next(c for c in doc["checks"] if c["id"] == "clients")
    assert check["result"] == "warn"
    assert check["clients"] == ["shop/deployment/frontend"]
    assert check["message"].startswith("1 workload without sidecars in other namespaces (shop) cannot reach my-app "
                                       "under STRICT if it calls it: shop/deployment/frontend")
    (client,) = doc["clientsWithoutSidecar"]
    assert (client["ref"], client["namespace"], client["pods"]["total"]) == ("deployment/frontend", "shop", 2)


def test_strict_from_the_mesh_default_needs_no_detour(fp, mesh_cli):
    register_all(fp, meshed_namespace())
    register_write(fp, Writes(), "create")
    result = mesh_cli("mtls", NS, "strict", "-o", "json")
    assert result.exit_code == 0
    check = result.json()["checks"][0]
    assert (check["id"], check["result"]) == ("current-mode", "pass")
    assert check["message"] == "current mode PERMISSIVE (mesh default)"


def test_strict_straight_from_disable_is_refused_before_anything_is_written(fp, mesh_cli):
    register_all(fp, [*meshed_namespace(), pa(mode="DISABLE")], occurrences=2)
    result = mesh_cli("mtls", NS, "strict", "-o", "json")
    assert result.exit_code == 3
    assert len(fp.calls) == 1  # read only
    doc = result.json()
    (check,) = doc["refusedBy"]
    assert check["id"] == "permissive-first"
    assert check["message"].startswith("current mode is DISABLE (PeerAuthentication my-app/default (namespace-wide))")
    assert check["hint"].startswith("go through PERMISSIVE first: kubectl mesh mtls my-app permissive, check traffic")
    register_patch(fp, Writes(), pa(mode="DISABLE"))
    forced = mesh_cli("mtls", NS, "strict", "--force", "-o", "json")
    assert forced.exit_code == 0
    assert forced.json()["checks"][0]["result"] == "warn"


def test_strict_to_permissive_says_what_it_weakens(fp, mesh_cli):
    register_all(fp, [*meshed_namespace(), pa(mode="STRICT")])
    register_cluster(fp, [*meshed_namespace(), pa(mode="STRICT")])
    register_patch(fp, Writes(), pa(mode="STRICT"))
    result = mesh_cli("mtls", NS, "permissive", "-o", "json")
    assert result.exit_code == 0
    check = next(c for c in result.json()["checks"] if c["id"] == "weakens")
    assert check["result"] == "warn"
    assert check["message"].startswith("STRICT -> PERMISSIVE weakens my-app: its pods accept plain-text connections "
                                       "again")
    assert result.json()["namespaces"][0]["mtls"]["mode"] == "PERMISSIVE"


def test_an_opted_out_workload_is_told_to_drop_the_opt_out(fp, mesh_cli):
    legacy = deployment_with_pods("legacy", pods=1, labels={"app": "legacy", "sidecar.istio.io/inject": "false"})
    register_all(fp, [*meshed_namespace(*legacy)])
    result = mesh_cli("mtls", NS, "strict", "-o", "json")
    assert result.exit_code == 3
    hint = result.json()["refusedBy"][0]["hint"]
    assert hint.startswith("remove the opt-out (sidecar.istio.io/inject=false in its pod template's labels)")
    assert "kubectl mesh enable" not in hint and "delete" not in hint


def test_strict_when_listing_all_namespaces_is_forbidden(fp, mesh_cli):
    register_kubectl(fp, ALL_READ, returncode=1,
                     stderr='Error from server (Forbidden): pods is forbidden: User "dev" cannot list resource '
                            '"pods" in API group "" at the cluster scope\n')
    register_cluster(fp, meshed_namespace(pa(mode="PERMISSIVE")))
    register_patch(fp, Writes(), pa(mode="PERMISSIVE"))
    result = mesh_cli("mtls", NS, "strict", "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert calls(fp)[1] == ["kubectl", *batch_read(NS)]
    check = next(c for c in result.json()["checks"] if c["id"] == "clients")
    assert check["result"] == "skip"
    assert "not readable (needs list pods at the cluster scope)" in check["message"]
    assert (check["verb"], check["resource"], check["namespace"]) == ("list", "pods", None)


def test_second_run_plans_nothing(fp, mesh_cli):
    register_all(fp, [*meshed_namespace(), pa(mode="STRICT")])
    result = mesh_cli("mtls", NS, "strict", "-o", "json")
    assert result.exit_code == 0
    assert len(api_calls(fp)) == 1
    assert result.json()["plan"][0]["status"] == "unchanged"
    assert "already so" in result.json()["plan"][0]["reason"]


def test_dry_run_diff(fp, mesh_cli):
    register_all(fp, [*meshed_namespace(), pa(mode="PERMISSIVE")])
    result = mesh_cli("mtls", NS, "strict", "--dry-run", "-o", "json")
    assert result.exit_code == 0
    assert len(api_calls(fp)) == 1
    diff = result.json()["plan"][0]["diff"]
    assert "-    mode: PERMISSIVE\n+    mode: STRICT\n" in diff


def test_several_namespace_policies_update_the_oldest_and_warn(fp, mesh_cli):
    newer = pa("newer", mode="STRICT", created="2024-06-01T00:00:00Z")
    older = pa("older", mode="DISABLE", created="2023-06-01T00:00:00Z", rv="3")
    register_cluster(fp, meshed_namespace(newer, older))
    writes = Writes()
    register_patch(fp, writes, older)
    result = mesh_cli("mtls", NS, "permissive", "-o", "json")
    assert result.exit_code == 0
    assert writes.sent[0]["metadata"]["name"] == "older"
    check = next(c for c in result.json()["checks"] if c["id"] == "single-policy")
    assert check["hint"] == "delete the others: kubectl delete peerauthentication -n my-app newer"


def test_a_workload_policy_named_default_is_not_taken_for_the_namespace(fp, mesh_cli):
    register_cluster(fp, meshed_namespace(pa("default", selector={"app": "web"}, mode="STRICT")))
    writes = Writes()
    register_write(fp, writes, "create")
    result = mesh_cli("mtls", NS, "permissive")
    assert result.exit_code == 0
    assert writes.sent[0]["metadata"]["name"] == "namespace-mtls"


# -- permissive --------------------------------------------------------------------------------------
def test_permissive_reads_one_namespace_and_never_refuses(fp, mesh_cli):
    register_cluster(fp, [namespace(NS), *deployment_with_pods("legacy"), pa(mode="STRICT")])
    writes = Writes()
    register_patch(fp, writes, pa(mode="STRICT"))
    result = mesh_cli("mtls", NS, "permissive", "-o", "json")
    assert result.exit_code == 0
    assert calls(fp) == [["kubectl", *batch_read(NS)], ["kubectl", *namespace_read(NS)], ["kubectl", *ROOT_PA],
                         ["kubectl", *patch_args(PA_RESOURCE, "default")]]
    assert writes.patches == [{"spec": {"mtls": {"mode": "PERMISSIVE"}}, "metadata": {"resourceVersion": "7"}}]
    assert writes.sent[0]["spec"] == {"mtls": {"mode": "PERMISSIVE"}}


def test_conflict_retried(fp, mesh_cli):
    register_cluster(fp, meshed_namespace(pa(mode="STRICT")))
    writes = Writes()
    register_patch(fp, writes, pa(mode="STRICT"), returncode=1, stderr=CONFLICT.replace("destinationrules", "peerauth"))
    register_kubectl(fp, ["get", PA_RESOURCE, "default", "-n", NS, "-o", "json"],
                     stdout=json.dumps(pa(mode="STRICT", rv="8", annotations={"by": "someone"})))
    register_patch(fp, writes, pa(mode="STRICT", rv="8", annotations={"by": "someone"}))
    result = mesh_cli("mtls", NS, "permissive")
    assert result.exit_code == 0, result.stderr
    assert writes.sent[1]["metadata"]["resourceVersion"] == "8"
    assert writes.sent[1]["metadata"]["annotations"] == {"by": "someone"}


def test_forbidden_write_exits_4(fp, mesh_cli):
    register_cluster(fp, meshed_namespace())
    register_write(fp, Writes(), "create", returncode=1,
                   stderr='Error from server (Forbidden): peerauthentications.security.istio.io is forbidden: '
                          'User "dev" cannot create resource\n')
    result = mesh_cli("mtls", NS, "permissive", "-o", "json")
    assert result.exit_code == 4
    assert result.json()["error"]["type"] == "Forbidden"


def test_namespace_not_found_exits_1(fp, mesh_cli):
    register_cluster(fp, [namespace("other")])
    result = mesh_cli("mtls", NS, "permissive")
    assert result.exit_code == 1
    assert 'namespace "my-app" not found' in result.stderr


# -- status -------------------------------------------------------------------------------------------
def test_status_per_workload_with_sources(fp, mesh_cli):
    objs = [*meshed_namespace(*deployment_with_pods("legacy")), pa(mode="STRICT"),
            pa("web-ports", selector={"app": "web"}, mode=None, ports={8080: "PERMISSIVE"}),
            pa("api-off", selector={"app": "api"}, mode="DISABLE")]
    register_cluster(fp, objs, root_policies=[pa("default", "istio-system", "PERMISSIVE")], occurrences=2)
    result = mesh_cli("mtls", NS, "status", "-o", "json")
    assert result.exit_code == 0
    assert len(api_calls(fp)) == 3  # the namespace's batch, its Namespace, the root namespace's policies
    doc = result.json()
    (state,) = doc["namespaces"]
    rows = {w["ref"]: w for w in state["workloads"]}
    assert rows["deployment/web"]["mtls"]["mode"] == "STRICT"
    assert rows["deployment/web"]["mtls"]["source"] == "PeerAuthentication my-app/default (namespace-wide)"
    assert rows["deployment/web"]["mtls"]["ports"] == [
        {"port": 8080, "mode": "PERMISSIVE", "source": "PeerAuthentication my-app/web-ports (workload)"}]
    assert rows["deployment/api"]["mtls"]["mode"] == "DISABLE"
    assert (rows["deployment/legacy"]["pods"]["total"], rows["deployment/legacy"]["pods"]["meshed"]) == (2, 0)
    assert rows["deployment/legacy"]["mtls"] == {"mode": "STRICT", "ports": [],
                                                 "source": "PeerAuthentication my-app/default (namespace-wide)"}
    assert state["mtls"]["mode"] == "STRICT"
    assert {p["name"] for p in state["peerAuthentications"]} == {"default", "web-ports", "api-off"}
    warn = [c for c in doc["checks"] if c["result"] == "warn"]
    assert [c["subject"] for c in warn] == ["deployment/legacy"]
    text = mesh_cli("mtls", NS, "status").stdout
    assert "deployment/web" in text and "port 8080: PERMISSIVE" in text
    assert text.rstrip().endswith("namespace my-app: STRICT")


def test_status_uses_the_mesh_wide_policy(fp, mesh_cli):
    register_cluster(fp, meshed_namespace(), root_policies=[pa("default", "istio-system", "STRICT")])
    result = mesh_cli("mtls", "status", "-n", NS, "-o", "json")
    assert result.json()["namespaces"][0]["mtls"] == {
        "mode": "STRICT", "source": "PeerAuthentication istio-system/default (mesh-wide)", "ports": []}


# -- bad input ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv,needle", [
    (["mtls"], "missing mode"),
    (["mtls", NS, "strictest"], 'invalid mode "strictest"'),
    (["mtls", "Bad_NS", "strict"], 'invalid namespace "Bad_NS"'),
    (["mtls", "a", "strict", "-n", "b"], 'namespace given twice with different values: "a" and -n "b"'),
    (["mtls", NS, "strict", "extra"], "unexpected extra argument"),
    (["mtls", NS, "disable"], 'invalid mode "disable"'),
])
def test_bad_input_exits_2_before_any_call(fp, mesh_cli, argv, needle):
    result = mesh_cli(*argv)
    assert result.exit_code == 2, result.stdout
    assert needle in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert len(api_calls(fp)) == 0


@pytest.mark.parametrize("argv", [
    ["mtls", NS, "strict", "--context", "prod"],
    ["--context", "prod", "mtls", "-n", NS, "strict"],
    ["mtls", "--context=prod", "strict", "-n", NS],
])
def test_global_options_anywhere(fp, mesh_cli, argv):
    fp.register(["kubectl", "--context", "prod", *ALL_READ], stdout=kube_list(*meshed_namespace(pa(mode="STRICT"))))
    result = mesh_cli(*argv)
    assert result.exit_code == 0, result.stderr

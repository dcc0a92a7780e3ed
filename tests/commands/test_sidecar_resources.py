"""sidecar-resources: conditional merge patch of the pod template, rollout wait, proxy check; exit codes, JSON."""

from __future__ import annotations

import json

import pytest

from kubectl_mesh import merge
from tests.commands.istio_objects import NS
from tests.helpers import (
    api_calls,
    deployment,
    deployment_with_pods,
    kube_list,
    namespace,
    namespace_read,
    register_kubectl,
    register_namespace,
    rollouts_read,
)

READ = ["get", "pods,deployments.apps,replicasets.apps", "-n", NS, "-o", "json"]


def register_read(fp, objs, kinds="pods,deployments.apps,replicasets.apps", prefix=()):
    """The workload's namespace read: its kinds, then the Namespace by name."""
    fp.register(["kubectl", *prefix, "get", kinds, "-n", NS, "-o", "json"],
                stdout=kube_list(*[o for o in objs if o["kind"] != "Namespace"]))
    register_namespace(fp, objs, NS, prefix)


STATUS = rollouts_read(NS)  # the rollout wait's read
ROLLED_OUT = kube_list(deployment("web", NS, replicas=2))
PODS = ["get", "pods", "-n", NS, "-l", "app=web", "-o", "json"]
WANTED = {merge.PROXY_CPU: "200m", merge.PROXY_MEMORY: "256Mi", merge.PROXY_CPU_LIMIT: "1",
          merge.PROXY_MEMORY_LIMIT: "1Gi"}
ARGS = ("sidecar-resources", "deploy/web", "-n", NS, "--cpu", "200m", "--memory", "256Mi", "--cpu-limit", "1",
        "--memory-limit", "1Gi")


def _cluster(annotations=None, sidecar="container"):
    objs = [namespace(NS, {"istio-injection": "enabled"}), *deployment_with_pods("web", sidecar=sidecar)]
    if annotations:
        objs[1]["spec"]["template"]["metadata"]["annotations"].update(annotations)
    return objs


def _patch_args(changed: dict, rv: str = "100") -> list[str]:
    body = {"spec": {"template": {"metadata": {"annotations": changed}}}, "metadata": {"resourceVersion": rv}}
    return ["patch", "deployments.apps", "web", "-n", NS, "--type", "merge", "-p",
            json.dumps(body, separators=(",", ":")), "-o", "json"]


def _patched(deploy: dict, annotations: dict) -> str:
    return json.dumps(merge.template_annotations(deploy, annotations))


def _rolled_pods(requests=("200m", "256Mi"), limits=("1000m", "1Gi")) -> str:
    pods = [p for p in deployment_with_pods("web", sidecar="container") if p["kind"] == "Pod"]
    for p in pods:
        proxy = next(c for c in p["spec"]["containers"] if c["name"] == "istio-proxy")
        proxy["resources"] = {"requests": {"cpu": requests[0], "memory": requests[1]},
                              "limits": {"cpu": limits[0], "memory": limits[1]}}
    return kube_list(*pods)


def test_patches_waits_and_verifies(fp, mesh_cli):
    objs = _cluster({"prometheus.io/scrape": "true"})
    register_read(fp, [*objs])
    register_kubectl(fp, _patch_args(WANTED), stdout=_patched(objs[1], WANTED))
    register_kubectl(fp, STATUS, stdout=ROLLED_OUT)
    register_kubectl(fp, PODS, stdout=_rolled_pods())
    result = mesh_cli(*ARGS, "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert api_calls(fp) == [["kubectl", *READ], ["kubectl", *namespace_read(NS)],
                             ["kubectl", *_patch_args(WANTED)],
                                           ["kubectl", *STATUS], ["kubectl", *PODS]]
    doc = result.json()
    assert doc["success"] is True
    assert doc["sidecarResources"] == {"annotations": WANTED, "previous": {}}
    assert doc["requested"] == {"sidecarResources": {"annotations": WANTED}}
    assert doc["workload"]["ref"] == "deployment/web" and doc["workload"]["namespace"] == NS
    assert doc["workload"]["pods"]["total"] == 2
    step = doc["plan"][0]
    assert (step["action"], step["target"], step["status"]) == ("annotate", "deployment/web", "applied")
    assert step["command"].startswith("kubectl patch deployments.apps web -n my-app --type merge -p ")
    assert step["restore"] == f"kubectl replace -f {step['backup']}"
    assert [(c["id"], c["result"]) for c in doc["checks"]] == [
        ("meshed", "pass"), ("rollout", "pass"), ("proxy-resources", "pass")]
    assert "waiting for deployment/web in my-app" in result.stderr


def test_only_changed_annotations_are_patched(fp, mesh_cli):
    objs = _cluster({merge.PROXY_CPU: "200m", merge.PROXY_MEMORY: "128Mi"})
    register_read(fp, [*objs])
    changed = {merge.PROXY_MEMORY: "256Mi"}
    register_kubectl(fp, _patch_args(changed), stdout=_patched(objs[1], changed))
    result = mesh_cli("sidecar-resources", "web", "--kind", "deployment", "-n", NS, "--cpu", "200m",
                      "--memory", "256Mi", "--no-wait", "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["sidecarResources"]["previous"] == {merge.PROXY_CPU: "200m", merge.PROXY_MEMORY: "128Mi"}
    assert len(api_calls(fp)) == 3  # the reads and the patch; --no-wait: no rollout status, no pod check


def test_second_run_plans_nothing_but_still_checks_the_rollout(fp, mesh_cli):
    register_read(fp, [*_cluster(WANTED)])
    register_kubectl(fp, STATUS, stdout=ROLLED_OUT)
    register_kubectl(fp, PODS, stdout=_rolled_pods())
    result = mesh_cli(*ARGS, "-o", "json")
    assert result.exit_code == 0
    assert fp.call_count(["kubectl", "patch", fp.any()]) == 0
    assert result.json()["plan"][0]["status"] == "unchanged"
    assert result.json()["checks"][-1]["message"].endswith("(already so)")


def test_dry_run(fp, mesh_cli):
    register_read(fp, [*_cluster()])
    result = mesh_cli(*ARGS, "--dry-run", "-o", "json")
    assert result.exit_code == 0
    assert len(api_calls(fp)) == 2  # the reads only
    diff = result.json()["plan"][0]["diff"]
    assert "+        sidecar.istio.io/proxyCPU: 200m\n" in diff
    assert "+        sidecar.istio.io/proxyMemoryLimit: 1Gi\n" in diff


def test_conflict_rereads_and_patches_with_the_new_version(fp, mesh_cli):
    objs = _cluster()
    register_read(fp, [*objs])
    register_kubectl(fp, _patch_args(WANTED), returncode=1,
                     stderr='Error from server (Conflict): Operation cannot be fulfilled on deployments.apps "web": '
                            'the object has been modified; please apply your changes to the latest version\n')
    newer = json.loads(json.dumps(objs[1]))
    newer["metadata"]["resourceVersion"] = "101"
    newer["spec"]["template"]["metadata"]["annotations"]["team"] = "a"
    register_kubectl(fp, ["get", "deployments.apps", "web", "-n", NS, "-o", "json"], stdout=json.dumps(newer))
    register_kubectl(fp, _patch_args(WANTED, rv="101"), stdout=_patched(newer, WANTED))
    result = mesh_cli(*ARGS, "--no-wait")
    assert result.exit_code == 0, result.stderr
    assert "changed since it was read" in result.stderr


def test_forbidden_patch_exits_4_with_nothing_written(fp, mesh_cli):
    register_read(fp, [*_cluster()])
    register_kubectl(fp, _patch_args(WANTED), returncode=1,
                     stderr='Error from server (Forbidden): deployments.apps "web" is forbidden: User "dev" cannot '
                            'patch resource "deployments" in API group "apps" in the namespace "my-app"\n')
    result = mesh_cli(*ARGS, "-o", "json")
    assert result.exit_code == 4
    doc = result.json()
    assert doc["error"]["type"] == "Forbidden" and doc["plan"] == []
    assert fp.call_count(["kubectl", "rollout", fp.any()]) == 0


def test_rollout_timeout_exits_4(fp, mesh_cli, monkeypatch):
    from kubectl_mesh.apply import rollout

    monkeypatch.setattr(rollout, "POLL_SECONDS", 0.05)
    objs = _cluster()
    register_read(fp, [*objs])
    register_kubectl(fp, _patch_args(WANTED), stdout=_patched(objs[1], WANTED))
    stuck = deployment("web", NS, replicas=2)
    stuck["metadata"]["generation"] = 2  # the controller has not seen the change yet
    register_kubectl(fp, STATUS, stdout=kube_list(stuck), occurrences=1000)
    result = mesh_cli(*ARGS, "--timeout", "1s", "-o", "json")
    assert result.exit_code == 4
    assert result.json()["error"]["type"] == "Timeout"
    assert result.json()["plan"][0]["status"] == "applied"


def test_proxies_without_the_values_fail_verification(fp, mesh_cli):
    objs = _cluster()
    register_read(fp, [*objs])
    register_kubectl(fp, _patch_args(WANTED), stdout=_patched(objs[1], WANTED))
    register_kubectl(fp, STATUS, stdout=ROLLED_OUT)
    register_kubectl(fp, PODS, stdout=_rolled_pods(requests=("100m", "128Mi")))
    result = mesh_cli(*ARGS, "-o", "json")
    assert result.exit_code == 1
    check = result.json()["checks"][-1]
    assert check["id"] == "proxy-resources" and check["result"] == "fail"


PA_PROBE = ["get", "peerauthentications.security.istio.io", "-n", NS, "-o", "name"]


def test_workload_outside_the_mesh_is_refused_exit_3_and_not_rolled(fp, mesh_cli):
    """Its pods have no sidecar and get none: rolling it would change nothing a proxy reads."""
    register_read(fp, [namespace(NS), *deployment_with_pods("web")])
    register_kubectl(fp, PA_PROBE)
    result = mesh_cli(*ARGS, "-o", "json")
    assert result.exit_code == 3
    check = result.json()["checks"][0]
    assert check["result"] == "fail" and "roll for nothing" in check["message"]
    assert check["hint"].startswith("enable injection first: kubectl mesh enable my-app")
    assert fp.call_count(["kubectl", "patch", fp.any()]) == 0


def test_outside_the_mesh_with_force_sets_them_anyway(fp, mesh_cli):
    register_read(fp, [namespace(NS), *deployment_with_pods("web")])
    register_kubectl(fp, PA_PROBE)
    result = mesh_cli(*ARGS, "--force", "--dry-run", "-o", "json")
    assert result.exit_code == 0 and result.json()["checks"][0]["result"] == "warn"


def test_istio_not_installed_is_refused_exit_3(fp, mesh_cli):
    register_read(fp, [namespace(NS, {"istio-injection": "enabled"}), *deployment_with_pods("web")])
    register_kubectl(fp, PA_PROBE, returncode=1,
                     stderr='error: the server doesn\'t have a resource type "peerauthentications"\n')
    result = mesh_cli(*ARGS)
    assert result.exit_code == 3
    assert result.stderr.startswith("error: Istio is not installed on this cluster (its CRDs are missing)")
    assert fp.call_count(["kubectl", "patch", fp.any()]) == 0


def test_statefulset(fp, mesh_cli):
    sts = {"apiVersion": "apps/v1", "kind": "StatefulSet",
           "metadata": {"name": "db", "namespace": NS, "resourceVersion": "5"},
           "spec": {"selector": {"matchLabels": {"app": "db"}},
                    "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": []}}}}
    register_read(fp, [namespace(NS, {"istio-injection": "enabled"}), sts], kinds="pods,statefulsets.apps,replicasets.apps")
    register_kubectl(fp, PA_PROBE)
    result = mesh_cli("sidecar-resources", "sts/db", "-n", NS, "--cpu", "1", "--memory", "1Gi", "--dry-run",
                      "-o", "json")
    assert result.exit_code == 0
    assert result.json()["plan"][0]["command"].startswith("kubectl patch statefulsets.apps db -n my-app")


def test_workload_not_found_exits_1(fp, mesh_cli):
    register_read(fp, [namespace(NS)])
    result = mesh_cli(*ARGS)
    assert result.exit_code == 1
    assert "deployment/web not found in namespace my-app" in result.stderr


def test_existing_limit_below_the_new_request_exits_2(fp, mesh_cli):
    register_read(fp, [*_cluster({merge.PROXY_CPU_LIMIT: "100m"})])
    result = mesh_cli("sidecar-resources", "deploy/web", "-n", NS, "--cpu", "200m", "--memory", "1Gi")
    assert result.exit_code == 2
    assert "request 200m is greater than limit 100m" in result.stderr
    assert "--cpu-limit" in result.stderr
    assert fp.call_count(["kubectl", "patch", fp.any()]) == 0


@pytest.mark.parametrize("argv,needle", [
    (["deploy/web", "--cpu", "fast", "--memory", "1Gi"], 'invalid --cpu "fast"'),
    (["deploy/web", "--cpu", "100m", "--memory", "1GB"], 'invalid --memory "1GB"'),
    (["deploy/web", "--cpu", "-1", "--memory", "1Gi"], 'invalid --cpu "-1": must not be negative'),
    (["deploy/web", "--cpu", "2", "--memory", "1Gi", "--cpu-limit", "1"], "request 2 is greater than limit 1"),
    (["deploy/web", "--cpu", "1", "--memory", "2Gi", "--memory-limit", "1Gi"], "request 2Gi is greater than limit 1Gi"),
    (["deploy/web", "--cpu", "1", "--memory", "1Gi", "--cpu-limit", "x"], 'invalid --cpu-limit "x"'),
    (["job/web", "--cpu", "1", "--memory", "1Gi"], 'invalid workload kind "job"'),
    (["deploy/Web", "--cpu", "1", "--memory", "1Gi"], 'invalid workload name "Web"'),
    (["deploy/web", "--kind", "sts", "--cpu", "1", "--memory", "1Gi"], "contradicts --kind sts"),
    (["deploy/web", "--memory", "1Gi"], "Missing option '--cpu'"),
    (["deploy/web", "--cpu", "1"], "Missing option '--memory'"),
])
def test_bad_input_exits_2_with_one_line_and_no_call(fp, mesh_cli, argv, needle):
    result = mesh_cli("sidecar-resources", *argv, "-n", NS)
    assert result.exit_code == 2, result.stdout
    assert needle in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert len(api_calls(fp)) == 0


def test_global_options_anywhere(fp, mesh_cli):
    register_read(fp, _cluster(WANTED), prefix=("--context", "prod"))
    result = mesh_cli("--context", "prod", "sidecar-resources", "--no-wait", "deploy/web", "--cpu", "200m",
                      "-n", NS, "--memory", "256Mi", "--cpu-limit", "1", "--memory-limit", "1Gi")
    assert result.exit_code == 0, result.stderr

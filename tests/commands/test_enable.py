"""enable: exact kubectl calls, dry run, idempotence, refusals, conflicts, errors."""

from __future__ import annotations

import json

from tests.helpers import (
    CONFIGMAPS_READ,
    ROOT_PA,
    api_calls,
    batch_read,
    calls_made,
    deployment,
    deployment_with_pods,
    kube_list,
    namespace,
    pod,
    register_cluster,
    register_kubectl,
    register_namespace,
    register_rollouts,
    rollouts_read,
)

LABEL = ["label", "namespace", "my-app", "istio-injection=enabled", "--overwrite", "--resource-version=7"]
RESTART = ["rollout", "restart", "deployment/web", "deployment/api", "-n", "my-app"]


def _before():
    return [namespace("my-app", resourceVersion="7"), *deployment_with_pods("web"), *deployment_with_pods("api")]


def _after():
    return [namespace("my-app", {"istio-injection": "enabled"}, resourceVersion="8"),
            *deployment_with_pods("web", sidecar="container"), *deployment_with_pods("api", sidecar="container")]


def _rolled_out():
    return [deployment("web", replicas=2), deployment("api", replicas=2)]


def test_dry_run_plans_label_and_restarts_and_changes_nothing(fp, mesh_cli):
    register_cluster(fp, _before())
    result = mesh_cli("enable", "my-app", "--dry-run", "-o", "json")
    assert result.exit_code == 0
    plan = result.json()["plan"]
    assert [(s["action"], s["target"], s["status"]) for s in plan] == [
        ("label", "namespace/my-app", "planned"),
        ("restart", "deployment/web", "planned"),
        ("restart", "deployment/api", "planned"),
    ]
    assert plan[0]["command"] == "kubectl " + " ".join(LABEL)
    assert plan[1]["reason"] == "2 of 2 pods lack istio-proxy"
    assert len(api_calls(fp)) == 3  # reads only


def test_dry_run_text(fp, mesh_cli):
    register_cluster(fp, _before())
    result = mesh_cli("enable", "my-app", "--dry-run")
    assert "~ label namespace/my-app: enable injection [planned]" in result.stdout
    assert "    $ kubectl rollout restart deployment/web -n my-app" in result.stdout
    assert result.stdout.rstrip().endswith("dry run: 3 changes planned, nothing changed")


def test_enable_labels_restarts_waits_and_verifies(fp, mesh_cli):
    register_cluster(fp, _before())
    register_kubectl(fp, LABEL, stdout="namespace/my-app labeled\n")
    register_kubectl(fp, RESTART, stdout="deployment.apps/web restarted\ndeployment.apps/api restarted\n")
    register_rollouts(fp, *_rolled_out())
    register_cluster(fp, _after())
    result = mesh_cli("enable", "my-app", "--no-istioctl", "-o", "json")
    assert result.exit_code == 0, result.stderr
    doc = result.json()
    assert [s["status"] for s in doc["plan"]] == ["applied", "applied", "applied"]
    assert doc["plan"][0]["restore"].startswith("kubectl replace -f ")
    assert {c["subject"] for c in doc["checks"] if c["id"] == "sidecar-injected"} == {"deployment/web", "deployment/api"}
    assert all(c["result"] == "pass" for c in doc["checks"])
    assert "waiting for 2 rollouts in my-app" in result.stderr
    assert "deployment/web rolled out" in result.stderr
    # one restart call for both workloads, one read for both rollouts
    assert fp.call_count(["kubectl", "rollout", "restart", fp.any()]) == 1
    assert calls_made(fp).count(["kubectl", *rollouts_read()]) == 1


def test_second_run_plans_nothing_and_says_so(fp, mesh_cli):
    register_cluster(fp, _after(), occurrences=2)
    result = mesh_cli("enable", "my-app", "--no-istioctl")
    assert result.exit_code == 0
    assert "= label namespace/my-app: labels already as wanted [unchanged]" in result.stdout
    assert "nothing to do: namespace my-app is already enabled and no workload needs a restart; verified" \
        in result.stdout
    assert fp.call_count(["kubectl", "label", fp.any()]) == 0
    assert fp.call_count(["kubectl", "rollout", fp.any()]) == 0


def test_conflicting_revision_label_is_replaced(fp, mesh_cli):
    objs = [namespace("my-app", {"istio.io/rev": "canary"}, resourceVersion="7"),
            *deployment_with_pods("web", sidecar="container")]
    register_cluster(fp, objs)
    result = mesh_cli("enable", "my-app", "--dry-run", "-o", "json")
    label = result.json()["plan"][0]
    assert label["command"] == ("kubectl label namespace my-app istio-injection=enabled istio.io/rev- "
                                "--overwrite --resource-version=7")
    assert "remove the conflicting istio.io/rev=canary label" in label["reason"]


ISTIODS = ["get", "deployments.apps", "-A", "-l", "app=istiod", "-o", "json"]
TAG_WEBHOOKS = ["get", "mutatingwebhookconfigurations.admissionregistration.k8s.io", "-l", "istio.io/tag", "-o", "json"]


def _istiod(rev=None):
    labels = {"app": "istiod", **({"istio.io/rev": rev} if rev else {})}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": f"istiod-{rev}" if rev else "istiod", "namespace": "istio-system", "labels": labels}}


def _tag(tag, rev):
    return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": f"istio-revision-tag-{tag}", "labels": {"istio.io/tag": tag, "istio.io/rev": rev}}}


def test_unknown_revision_is_refused_naming_those_that_exist(fp, mesh_cli):
    """It labelled, restarted every workload, then blamed the pods."""
    register_cluster(fp, _before())
    register_kubectl(fp, ISTIODS, stdout=kube_list(_istiod(), _istiod("1-32")))
    register_kubectl(fp, TAG_WEBHOOKS, stdout=kube_list(_tag("stable", "1-32")))
    result = mesh_cli("enable", "my-app", "--revision", "1-33", "-o", "json")
    assert result.exit_code == 3
    check, = [c for c in result.json()["checks"] if c["id"] == "revision-exists"]
    assert check["result"] == "fail"
    assert "no control plane or revision tag 1-33 on this cluster (it has revisions 1-32, default; tags stable)" \
        in check["message"]
    assert fp.call_count(["kubectl", "label", fp.any()]) == 0 and fp.call_count(["kubectl", "rollout", fp.any()]) == 0


def test_a_revision_tag_is_a_revision_to_enable(fp, mesh_cli):
    register_cluster(fp, [namespace("my-app", {"istio-injection": "enabled"}, resourceVersion="7")])
    register_kubectl(fp, ISTIODS, stdout=kube_list(_istiod("1-32")))
    register_kubectl(fp, TAG_WEBHOOKS, stdout=kube_list(_tag("stable", "1-32")))
    result = mesh_cli("enable", "my-app", "--revision", "stable", "--dry-run", "-o", "json")
    assert result.exit_code == 0, result.stderr


def test_revision_unknowable_for_a_namespace_user_warns_and_labels(fp, mesh_cli):
    forbidden = 'Error from server (Forbidden): deployments.apps is forbidden: User "dev" cannot list resource'
    register_cluster(fp, [namespace("my-app", {"istio-injection": "enabled"}, resourceVersion="7")])
    register_kubectl(fp, ISTIODS, returncode=1, stderr=forbidden + ' "deployments" in API group "apps" at the cluster scope\n')
    register_kubectl(fp, ["get", "deployments.apps", "-n", "istio-system", "-l", "app=istiod", "-o", "json"],
                     returncode=1, stderr=forbidden + ' "deployments" in API group "apps" in the namespace "istio-system"\n')
    register_kubectl(fp, TAG_WEBHOOKS, returncode=1, stderr="Error from server (Forbidden): forbidden\n")
    result = mesh_cli("enable", "my-app", "--revision", "1-32", "--dry-run", "-o", "json")
    assert result.exit_code == 0
    assert [c["result"] for c in result.json()["checks"] if c["id"] == "revision-exists"] == ["warn"]


def test_revision_flag(fp, mesh_cli):
    register_cluster(fp, [namespace("my-app", {"istio-injection": "enabled"}, resourceVersion="7")])
    register_kubectl(fp, ISTIODS, stdout=kube_list(_istiod("1-32")))
    register_kubectl(fp, TAG_WEBHOOKS, stdout=kube_list())
    result = mesh_cli("enable", "my-app", "--revision", "1-32", "--dry-run", "-o", "json")
    assert result.json()["plan"][0]["command"] == (
        "kubectl label namespace my-app istio.io/rev=1-32 istio-injection- --overwrite --resource-version=7")


def test_opted_out_pods_are_not_restarted(fp, mesh_cli):
    objs = [namespace("my-app", resourceVersion="7"),
            *deployment_with_pods("legacy", labels={"app": "legacy", "sidecar.istio.io/inject": "false"})]
    register_cluster(fp, objs)
    result = mesh_cli("enable", "my-app", "--dry-run", "-o", "json")
    assert [s["action"] for s in result.json()["plan"]] == ["label"]


def test_restart_policies(fp, mesh_cli):
    objs = [namespace("my-app", {"istio-injection": "enabled"}, resourceVersion="7"),
            *deployment_with_pods("web", sidecar="container")]
    register_cluster(fp, objs, occurrences=2)
    assert [s["target"] for s in mesh_cli("enable", "my-app", "--restart", "all", "--dry-run", "-o",
                                          "json").json()["plan"]] == ["namespace/my-app", "deployment/web"]
    assert [s["target"] for s in mesh_cli("enable", "my-app", "--restart", "none", "--dry-run", "-o",
                                          "json").json()["plan"]] == ["namespace/my-app"]


def test_bare_pod_is_reported_not_restarted(fp, mesh_cli):
    register_cluster(fp, [namespace("my-app", resourceVersion="7"), pod("loner")])
    doc = mesh_cli("enable", "my-app", "--dry-run", "-o", "json").json()
    assert [s["action"] for s in doc["plan"]] == ["label"]
    assert doc["checks"][0]["subject"] == "pod/loner" and doc["checks"][0]["result"] == "warn"


def test_ambient_namespace_is_refused_with_exit_3(fp, mesh_cli):
    register_cluster(fp, [namespace("my-app", {"istio.io/dataplane-mode": "ambient"}, resourceVersion="7")])
    result = mesh_cli("enable", "my-app", "-o", "json")
    assert result.exit_code == 3
    doc = result.json()
    assert doc["refused"] is True and doc["success"] is False and "error" not in doc
    assert [c["id"] for c in doc["refusedBy"]] == ["ambient-namespace"]
    assert "ambient" in doc["refusedBy"][0]["message"] and "--force" in doc["refusedBy"][0]["hint"]
    assert doc["namespaces"][0]["injection"]["mode"] == "ambient"  # the live state, unchanged
    assert fp.call_count(["kubectl", "label", fp.any()]) == 0


def test_ambient_with_force_switches_to_sidecars(fp, mesh_cli):
    register_cluster(fp, [namespace("my-app", {"istio.io/dataplane-mode": "ambient"}, resourceVersion="7")])
    result = mesh_cli("enable", "my-app", "--force", "--dry-run", "-o", "json")
    assert result.exit_code == 0
    assert "istio.io/dataplane-mode-" in result.json()["plan"][0]["command"]


def test_istio_not_installed_is_refused(fp, mesh_cli):
    register_kubectl(fp, batch_read("my-app")[:-2] + ["-o", "json"], returncode=1,
                     stderr='error: the server doesn\'t have a resource type "virtualservices"\n')
    register_kubectl(fp, batch_read("my-app", istio=False), stdout=kube_list())
    register_namespace(fp, [namespace("my-app")])
    result = mesh_cli("enable", "my-app", "-o", "json")
    assert result.exit_code == 3
    assert result.json()["checks"][0]["id"] == "istio-installed"
    assert fp.call_count(["kubectl", "label", fp.any()]) == 0


def test_missing_namespace_is_exit_1(fp, mesh_cli):
    register_cluster(fp, [])
    result = mesh_cli("enable", "my-app")
    assert result.exit_code == 1
    assert result.stderr.strip() == 'error: namespace "my-app" not found'


def test_conflict_on_label_rereads_and_retries(fp, mesh_cli):
    register_cluster(fp, [namespace("my-app", resourceVersion="7")])
    register_kubectl(fp, LABEL, returncode=1,
                     stderr='Error from server (Conflict): Operation cannot be fulfilled on namespaces "my-app": '
                            "the object has been modified; please apply your changes to the latest version and "
                            "try again\n")
    # someone else added a label meanwhile; it is kept, and the new version is used
    register_kubectl(fp, ["get", "namespaces", "my-app", "-o", "json"],
                     stdout=json.dumps(namespace("my-app", {"team": "x"}, resourceVersion="9")))
    register_kubectl(fp, LABEL[:-1] + ["--resource-version=9"], stdout="namespace/my-app labeled\n")
    register_cluster(fp, [namespace("my-app", {"istio-injection": "enabled", "team": "x"})])
    result = mesh_cli("enable", "my-app", "--no-istioctl", "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["plan"][0]["status"] == "applied"
    assert fp.call_count(["kubectl", "label", fp.any()]) == 2


def test_forbidden_label_is_exit_4_with_one_line(fp, mesh_cli):
    register_cluster(fp, _before())
    register_kubectl(fp, LABEL, returncode=1,
                     stderr='Error from server (Forbidden): namespaces "my-app" is forbidden: User "dev" cannot '
                            'patch resource "namespaces" in API group "" in the namespace "my-app"\n')
    result = mesh_cli("enable", "my-app")
    assert result.exit_code == 4
    assert len(result.stderr.strip().splitlines()) == 1
    assert 'cannot patch resource "namespaces"' in result.stderr
    assert "(from: kubectl label namespace my-app" in result.stderr
    assert fp.call_count(["kubectl", "rollout", fp.any()]) == 0


def test_rollout_timeout_is_exit_4_and_reported(fp, mesh_cli, monkeypatch):
    from kubectl_mesh.apply import rollout

    monkeypatch.setattr(rollout, "POLL_SECONDS", 0.05)
    register_cluster(fp, _before())
    register_kubectl(fp, LABEL)
    register_kubectl(fp, RESTART)
    stuck = deployment("web", replicas=2)
    stuck["status"]["updatedReplicas"] = 1
    register_rollouts(fp, stuck, deployment("api", replicas=2), occurrences=1000)
    register_cluster(fp, _after())
    result = mesh_cli("enable", "my-app", "--timeout", "1s", "--no-istioctl", "-o", "json")
    assert result.exit_code == 4
    doc = result.json()
    assert doc["success"] is False
    assert doc["error"]["type"] == "Timeout"
    assert [s["status"] for s in doc["plan"]] == ["applied", "failed", "applied"]
    assert "run the same command again" in result.stderr
    assert "deployment/web: 1 of 2 updated replicas, 2 available" in result.stderr


def test_many_restarts_go_a_few_names_a_call_or_as_the_list_form(fp, mesh_cli):
    names = [f"w{i}" for i in range(6)]
    before = [namespace("my-app", resourceVersion="7")]
    for name in names:
        before += deployment_with_pods(name, pods=1)
    register_cluster(fp, before)
    register_kubectl(fp, LABEL)
    fp.register(["kubectl", "rollout", "restart", "deployment", "-n", "my-app"])
    register_rollouts(fp, *[deployment(n) for n in names])
    register_cluster(fp, [namespace("my-app", {"istio-injection": "enabled"}),
                          *[o for n in names for o in deployment_with_pods(n, pods=1, sidecar="container")]])
    result = mesh_cli("enable", "my-app", "--no-istioctl", "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert [s["status"] for s in result.json()["plan"]] == ["applied"] * 7


def test_restarts_of_some_workloads_go_at_most_four_names_a_call():
    from kubectl_mesh.apply.rollout import restart_calls
    from kubectl_mesh.snapshot import WorkloadRef

    refs = [WorkloadRef("Deployment", "ns", f"w{i}") for i in range(9)]
    calls = restart_calls("ns", refs, {"Deployment": {r.name for r in refs} | {"other"}})
    assert [len(done) for _, done in calls] == [4, 4, 1]
    assert calls[0][0] == ["rollout", "restart", "deployment/w0", "deployment/w1", "deployment/w2",
                           "deployment/w3", "-n", "ns"]
    every = restart_calls("ns", refs, {"Deployment": {r.name for r in refs}})
    assert [args for args, _ in every] == [["rollout", "restart", "deployment", "-n", "ns"]]


def test_no_wait_skips_waiting_and_verification(fp, mesh_cli):
    register_cluster(fp, _before())
    register_kubectl(fp, LABEL)
    register_kubectl(fp, RESTART)
    result = mesh_cli("enable", "my-app", "--no-wait")
    assert result.exit_code == 0
    assert "not verified (--no-wait)" in result.stdout
    assert calls_made(fp).count(["kubectl", *rollouts_read()]) == 0


def test_verification_failure_after_enable_is_exit_1(fp, mesh_cli):
    register_cluster(fp, _before())
    register_kubectl(fp, LABEL)
    register_kubectl(fp, RESTART)
    register_rollouts(fp, *_rolled_out())
    # Istio's webhook did not inject (e.g. istiod down): pods still lack the proxy
    register_cluster(fp, [namespace("my-app", {"istio-injection": "enabled"}), *deployment_with_pods("web"),
                          *deployment_with_pods("api")])
    result = mesh_cli("enable", "my-app", "--no-istioctl")
    assert result.exit_code == 1
    assert "✗ deployment/web: 2 of 2 pods lack istio-proxy" in result.stdout


def test_unreadable_root_policies_make_the_mode_unknown_not_permissive(fp, mesh_cli):
    fp.register(["kubectl", *batch_read("my-app")], stdout=kube_list(*_after()[1:]), occurrences=2)
    register_namespace(fp, _after(), occurrences=2)
    fp.register(["kubectl", *ROOT_PA], returncode=1, occurrences=2,
                stderr='Error from server (Forbidden): peerauthentications.security.istio.io is forbidden: User "dev" '
                       'cannot list resource "peerauthentications" in API group "security.istio.io" in the '
                       'namespace "istio-system"\n')
    fp.register(["kubectl", *CONFIGMAPS_READ], returncode=1, occurrences=2,
                stderr='Error from server (Forbidden): configmaps is forbidden\n')
    result = mesh_cli("verify", "my-app", "--no-istioctl", "-o", "json")
    assert result.exit_code == 0, result.stderr
    check = next(c for c in result.json()["checks"] if c["id"] == "mtls-mode")
    assert check["result"] == "skip"
    assert check["message"] == ("mTLS mode unknown: the mesh-wide policy in istio-system is not readable "
                                "(needs list peerauthentications.security.istio.io in istio-system)")
    assert (check["verb"], check["resource"], check["namespace"]) == (
        "list", "peerauthentications.security.istio.io", "istio-system")
    assert "PERMISSIVE" not in result.stdout
    text = mesh_cli("verify", "my-app", "--no-istioctl")
    # the injector's settings unreadable: the proxy images are not compared, and it says why
    assert "- proxy images not compared with the injector's: cannot list configmaps in namespace " \
           "istio-system (forbidden)" in text.stdout


def test_rerun_waits_for_a_rollout_already_under_way(fp, mesh_cli):
    """After an interrupt the label and restart are done but a rollout is unfinished:
    the re-run restarts nothing, waits for it, then verifies."""
    objs = _after()
    objs[1]["status"]["updatedReplicas"] = 1  # web: one of two replicas updated
    register_cluster(fp, objs)
    register_rollouts(fp, *_rolled_out())
    register_cluster(fp, _after())
    result = mesh_cli("enable", "my-app", "--no-istioctl", "-o", "json")
    assert result.exit_code == 0, result.stderr
    doc = result.json()
    assert [s["status"] for s in doc["plan"]] == ["unchanged"]
    check = next(c for c in doc["checks"] if c["id"] == "rollout-complete")
    assert (check["subject"], check["result"]) == ("deployment/web", "pass")
    assert fp.call_count(["kubectl", "rollout", "restart", fp.any()]) == 0

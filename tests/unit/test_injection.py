"""Plans for enable/disable: label changes and which workloads restart."""

import json

import pytest

from kubectl_mesh import errors, injection
from kubectl_mesh.snapshot import Snapshot
from tests.helpers import deployment, deployment_with_pods, namespace, pod


def test_enable_on_plain_namespace_sets_one_label():
    change = injection.enable_labels(namespace("a"), None, force=False)
    assert change.set == {"istio-injection": "enabled"} and change.remove == []


def test_enable_resolves_conflicting_revision_label():
    change = injection.enable_labels(namespace("a", {"istio.io/rev": "canary"}), None, force=False)
    assert change.set == {"istio-injection": "enabled"}
    assert change.remove == ["istio.io/rev"]
    assert any("istio.io/rev=canary" in r for r in change.reasons)


def test_enable_with_revision_removes_istio_injection():
    change = injection.enable_labels(namespace("a", {"istio-injection": "enabled"}), "1-22", force=False)
    assert change.set == {"istio.io/rev": "1-22"}
    assert change.remove == ["istio-injection"]


def test_enable_is_empty_when_already_done():
    assert injection.enable_labels(namespace("a", {"istio-injection": "enabled"}), None, force=False).empty
    assert injection.enable_labels(namespace("a", {"istio.io/rev": "x"}), "x", force=False).empty


def test_enable_refuses_ambient_unless_forced():
    ambient = namespace("a", {"istio.io/dataplane-mode": "ambient"})
    with pytest.raises(errors.Refused, match="ambient"):
        injection.enable_labels(ambient, None, force=False)
    change = injection.enable_labels(ambient, None, force=True)
    assert change.remove == ["istio.io/dataplane-mode"]


def test_label_args_carry_resource_version():
    change = injection.LabelChange(set={"istio-injection": "enabled"}, remove=["istio.io/rev"])
    assert change.kubectl_args("a", "42") == [
        "label", "namespace", "a", "istio-injection=enabled", "istio.io/rev-", "--overwrite", "--resource-version=42"]


def test_disable_labels_keeps_explicit_disabled():
    assert injection.disable_labels(namespace("a", {"istio-injection": "disabled"})).empty
    change = injection.disable_labels(namespace("a", {"istio-injection": "enabled", "istio.io/rev": "x"}))
    assert change.remove == ["istio-injection", "istio.io/rev"]


def _enabled():
    return namespace("my-app", {"istio-injection": "enabled"})


def test_restarts_only_workloads_lacking_the_proxy():
    objs = [_enabled(), *deployment_with_pods("web"), *deployment_with_pods("api", sidecar="container")]
    snap = Snapshot(objs)
    plan = injection.enable_restarts(snap, "my-app", _enabled(), "missing")
    assert [str(r.workload) for r in plan.restarts] == ["deployment/web"]
    assert plan.restarts[0].pods and plan.restarts[0].reason == "2 of 2 pods lack istio-proxy"
    assert [str(r.workload) for r in injection.enable_restarts(snap, "my-app", _enabled(), "all").restarts] == [
        "deployment/web", "deployment/api"]
    assert injection.enable_restarts(snap, "my-app", _enabled(), "none").restarts == []


def test_opted_out_pods_and_templates_are_not_restarted():
    objs = deployment_with_pods("legacy", labels={"app": "legacy", "sidecar.istio.io/inject": "false"})
    snap = Snapshot([_enabled(), *objs])
    assert injection.enable_restarts(snap, "my-app", _enabled(), "missing").restarts == []
    opted = deployment("legacy2", template_labels={"sidecar.istio.io/inject": "false"})
    snap = Snapshot([_enabled(), opted])
    assert injection.enable_restarts(snap, "my-app", _enabled(), "all").restarts == []


def test_pods_from_another_revision_are_restarted():
    objs = deployment_with_pods("web", sidecar="container")
    for obj in objs:
        if obj["kind"] == "Pod":
            obj["metadata"]["annotations"]["sidecar.istio.io/status"] = json.dumps({"revision": "old"})
    ns = namespace("my-app", {"istio.io/rev": "new"})
    plan = injection.enable_restarts(Snapshot([ns, *objs]), "my-app", ns, "missing")
    assert [str(r.workload) for r in plan.restarts] == ["deployment/web"]
    assert "another revision than new" in plan.restarts[0].reason


def test_bare_pods_are_orphans_not_restarts():
    snap = Snapshot([_enabled(), pod("loner")])
    plan = injection.enable_restarts(snap, "my-app", _enabled(), "missing")
    assert plan.restarts == [] and [p.name for p in plan.orphans] == ["loner"]


def test_disable_restarts_meshed_workloads():
    objs = [*deployment_with_pods("web", sidecar="native"), *deployment_with_pods("api")]
    plan = injection.disable_restarts(Snapshot(objs), "my-app", "meshed")
    assert [str(r.workload) for r in plan.restarts] == ["deployment/web"]


@pytest.mark.parametrize("pods,missing,stale,meshed", [
    (1, "1 of 1 pod lacks istio-proxy", "1 pod has a proxy from another revision than new",
     "1 pod still carries istio-proxy"),
    (2, "2 of 2 pods lack istio-proxy", "2 pods have a proxy from another revision than new",
     "2 pods still carry istio-proxy"),
])
def test_restart_reasons_read_as_english(pods, missing, stale, meshed):
    plan = injection.enable_restarts(Snapshot([_enabled(), *deployment_with_pods("web", pods=pods)]), "my-app",
                                     _enabled(), "missing")
    assert [r.reason for r in plan.restarts] == [missing]
    objs = deployment_with_pods("web", pods=pods, sidecar="container")
    for obj in objs:
        if obj["kind"] == "Pod":
            obj["metadata"]["annotations"]["sidecar.istio.io/status"] = json.dumps({"revision": "old"})
    ns = namespace("my-app", {"istio.io/rev": "new"})
    assert [r.reason for r in injection.enable_restarts(Snapshot([ns, *objs]), "my-app", ns, "missing").restarts] \
        == [stale]
    assert [r.reason for r in injection.disable_restarts(Snapshot(objs), "my-app", "meshed").restarts] == [meshed]

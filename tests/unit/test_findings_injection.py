"""Injection as istioctl analyze's injection analyzers see it (IST0102, IST0103,
IST0123, IST0148, IST0158), the mesh and injector settings they read, and what
`kubectl mesh` adds without an Istio code (revision drift, an exited proxy)."""

from __future__ import annotations

import copy
import json

import pytest

from kubectl_mesh import drift, findings, meshconfig
from kubectl_mesh.errors import Forbidden, UsageError
from kubectl_mesh.snapshot import Snapshot
from tests.helpers import namespace, pod


def run(objects, check=None, settings=None):
    snap = Snapshot(copy.deepcopy(list(objects)))
    return [f for f in findings.run(snap, mesh_settings=settings) if check is None or f.id == check]


def brief(result):
    return sorted(((f.id, f.istio_code, f.level, str(f.object)) for f in result), key=lambda t: (t[0], t[3]))


def injector(name="istio-sidecar-injector", *, by_default=False, image="proxyv2", hub="docker.io/istio",
             tag="1.32.0"):
    values = {"global": {"hub": hub, "tag": tag, "proxy": {"image": image}},
              "sidecarInjectorWebhook": {"enableNamespacesByDefault": by_default}}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "istio-system"},
            "data": {"values": json.dumps(values)}}


def mesh_cm(mesh: str):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "istio", "namespace": "istio-system"},
            "data": {"mesh": mesh}}


# -- settings ---------------------------------------------------------------------------------
def test_injector_image_from_hub_tag_or_an_absolute_image():
    settings = meshconfig.from_configmaps([injector(), injector("istio-sidecar-injector-canary",
                                                                image="quay.io/me/proxy:7")])
    assert settings.injector("default").proxy_image == "docker.io/istio/proxyv2:1.32.0"
    assert settings.injector("canary").proxy_image == "quay.io/me/proxy:7"
    assert settings.injector(None).revision == "default"
    assert meshconfig.injector_configmap_name("canary") == "istio-sidecar-injector-canary"
    broken = meshconfig.from_configmaps([{"kind": "ConfigMap", "metadata": {"name": "istio-sidecar-injector"},
                                          "data": {"values": "{not json"}}])
    assert broken.injector(None).proxy_image is None and broken.enables_namespaces_by_default() is False


def test_mesh_config_defaults_and_image_type():
    settings = meshconfig.from_configmaps([mesh_cm("defaultServiceExportTo: ['.']\n"
                                                   "defaultConfig: {image: {imageType: distroless}}\n")])
    assert settings.service_export_to == ["."] and settings.virtual_service_export_to == ["*"]
    assert settings.image_type == "distroless" and settings.mesh_source == "ConfigMap istio-system/istio"
    assert meshconfig.from_configmaps([]).service_export_to == ["*"]


class _Runner:
    def __init__(self, error=None, items=()):
        self.error, self.items, self.calls = error, list(items), []

    def kubectl_json(self, *args):
        self.calls.append(args)
        if self.error:
            raise self.error
        return {"items": self.items}


def test_online_read_is_one_call_and_forbidden_is_unknown():
    runner = _Runner(items=[injector(by_default=True), {"kind": "ConfigMap", "metadata": {"name": "other"}}])
    settings = meshconfig.read(runner)
    assert runner.calls == [("get", "configmaps", "-n", "istio-system")]
    assert settings.known and settings.enables_namespaces_by_default() is True
    denied = meshconfig.read(_Runner(error=Forbidden("forbidden")))
    assert not denied.known and denied.enables_namespaces_by_default() is None
    assert "cannot list configmaps in namespace istio-system (forbidden)" in denied.unknown_why


def test_mesh_config_file_raw_or_configmap(tmp_path):
    raw = tmp_path / "mesh.yaml"
    raw.write_text("defaultServiceExportTo: ['.']\n")
    assert meshconfig.load_file(str(raw)) == ({"defaultServiceExportTo": ["."]}, str(raw))
    cm = tmp_path / "cm.yaml"
    cm.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio}\ndata:\n  mesh: 'rootNamespace: x'\n")
    assert meshconfig.load_file(str(cm))[0] == {"rootNamespace": "x"}
    bad = tmp_path / "bad.yaml"
    bad.write_text("[1, 2]\n")
    with pytest.raises(UsageError, match="not a mesh config"):
        meshconfig.load_file(str(bad))


# -- IST0102 / IST0148 ----------------------------------------------------------------------------
def test_not_injected_as_istioctl_sees_it():
    objs = [namespace("plain"), namespace("empty-rev", {"istio.io/rev": ""}), namespace("off",
            {"istio-injection": "disabled"}), namespace("amb", {"istio.io/dataplane-mode": "ambient"}),
            pod("a", "plain"), pod("b", "empty-rev"), pod("c", "off"), pod("d", "amb")]
    assert brief(run(objs, "MESH-INJ-001")) == [("MESH-INJ-001", "IST0102", "info", "Namespace plain")]


def test_injected_by_default_is_ist0148_and_unknown_settings_add_a_caveat():
    objs = [namespace("plain"), pod("a", "plain")]
    by_default = meshconfig.from_configmaps([injector(by_default=True)])
    assert brief(run(objs, settings=by_default)) == [
        ("MESH-INJ-002", None, "warning", "Pod plain/a"), ("MESH-INJ-004", "IST0148", "info", "Namespace plain")]
    [finding] = run(objs, "MESH-INJ-001", settings=meshconfig.unknown("cannot list configmaps (forbidden)"))
    assert "unless Istio injects unlabelled namespaces by default: cannot list configmaps" in finding.message


# -- IST0103 ----------------------------------------------------------------------------------------
def test_missing_proxy_carries_ist0103_only_where_istioctl_looks():
    objs = [namespace("on", {"istio-injection": "enabled"}), namespace("rev", {"istio.io/rev": "canary"}),
            namespace("both", {"istio-injection": "enabled", "istio.io/dataplane-mode": "ambient"}),
            pod("a", "on"), pod("b", "rev"), pod("c", "both")]
    assert brief(run(objs, "MESH-INJ-002")) == [
        ("MESH-INJ-002", None, "warning", "Pod both/c"), ("MESH-INJ-002", "IST0103", "warning", "Pod on/a"),
        ("MESH-INJ-002", None, "warning", "Pod rev/b")]


def test_an_exited_proxy_init_container_is_not_missing_but_not_in_the_mesh():
    exited = pod("x", "on")
    exited["spec"]["initContainers"] = [{"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.32.0"}]
    objs = [namespace("on", {"istio-injection": "enabled"}), exited, pod("y", "on", sidecar="native")]
    assert brief(run(objs)) == [("MESH-INJ-006", None, "warning", "Pod on/x")]


# -- IST0123 ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("labels, reported", [
    ({"istio-injection": "enabled", "istio.io/rev": "canary"}, True),
    ({"istio-injection": "enabled", "istio.io/dataplane-mode": "ambient"}, True),
    ({"istio.io/rev": "test", "istio.io/dataplane-mode": "ambient"}, True),
    ({"istio.io/rev": "", "istio.io/dataplane-mode": "none"}, True),  # presence counts, as in istioctl
    ({"istio-injection": "disabled", "istio.io/rev": "test"}, False),
    ({"istio-injection": "disabled", "istio.io/dataplane-mode": "ambient"}, False),
    ({"istio.io/rev": "canary"}, False),
])
def test_several_injection_labels(labels, reported):
    assert bool(run([namespace("ns", labels)], "MESH-INJ-003")) is reported


# -- IST0158 and revision drift ------------------------------------------------------------------------
def test_image_drift_per_namespace_skips_own_images_and_variants():
    old = pod("old", "on", sidecar="container")  # proxyv2:1.32.0
    own = pod("own", "on", sidecar="container", annotations={"sidecar.istio.io/proxyImage": "me/proxy:1"})
    own["spec"]["containers"][1]["image"] = "me/proxy:1"
    distroless = pod("dl", "on", sidecar="native")
    distroless["spec"]["initContainers"][0]["image"] = "docker.io/istio/proxyv2:1.32.1-distroless"
    objs = [namespace("on", {"istio-injection": "enabled"}), old, own, distroless, namespace("off"),
            pod("elsewhere", "off", sidecar="container")]
    settings = meshconfig.from_configmaps([injector(tag="1.32.1")])
    [finding] = run(objs, "MESH-INJ-005", settings)
    assert (finding.istio_code, str(finding.object)) == ("IST0158", "Namespace on")
    assert finding.details["pods"] == ["old"] and finding.details["expectedImage"].endswith(":1.32.1")
    # no injector known: nothing to compare with
    assert run(objs, "MESH-INJ-005", meshconfig.from_configmaps([])) == []


def test_revision_drift_after_a_namespace_moved_revision():
    status = json.dumps({"revision": "1-31"})
    moved = pod("moved", "app", sidecar="container", annotations={"sidecar.istio.io/status": status})
    pinned = pod("pinned", "app", sidecar="container", labels={"istio.io/rev": "1-31"},
                 annotations={"sidecar.istio.io/status": status})
    current = pod("current", "app", sidecar="container",
                  annotations={"sidecar.istio.io/status": json.dumps({"revision": "1-32"})})
    objs = [namespace("app", {"istio.io/rev": "1-32"}), moved, pinned, current]
    [finding] = run(objs, "MESH-INJ-007")
    assert finding.istio_code is None and finding.details["pods"] == ["moved"]
    assert "injected by revision 1-31, but the namespace now uses revision 1-32" in finding.message
    assert drift.namespace_revision(namespace("x", {"istio-injection": "enabled"})) == "default"


def test_offline_templates_in_a_namespace_injected_by_default_will_get_the_proxy():
    from kubectl_mesh.manifests import Manifests
    from kubectl_mesh.manifests import snapshot as manifest_snapshot
    from tests.helpers import deployment

    strict = {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
              "metadata": {"name": "default", "namespace": "plain"}, "spec": {"mtls": {"mode": "STRICT"}}}
    objs = [namespace("plain"), deployment("web", "plain"), strict, injector(by_default=True)]
    snap = manifest_snapshot(Manifests(copy.deepcopy(objs)))
    result = findings.run(snap)
    assert [(f.id, f.istio_code) for f in result] == [("MESH-INJ-004", "IST0148")]
    # without injection by default the same manifests run web outside the mesh under STRICT
    snap = manifest_snapshot(Manifests(copy.deepcopy(objs[:3])))
    assert {f.id for f in findings.run(snap)} == {"MESH-MTLS-001", "MESH-INJ-001"}

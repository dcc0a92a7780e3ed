"""Istio annotations (IST0107, IST0108, IST0125, IST0135): the formats Istio's
injector validates and the others of sidecar.istio.io/* we check beyond it; where
each annotation belongs; pods checked once per workload."""

from __future__ import annotations

import copy

import pytest

from kubectl_mesh import findings
from kubectl_mesh.findings import annotation_specs as specs
from kubectl_mesh.manifests import Manifests
from kubectl_mesh.manifests import snapshot as manifest_snapshot
from kubectl_mesh.snapshot import Snapshot
from tests.helpers import DATA, deployment, load_yaml, namespace, pod


def run(objects, *, offline=True, category="annotations"):
    objects = copy.deepcopy(list(objects))
    snap = manifest_snapshot(Manifests(objects)) if offline else Snapshot(objects)
    return [f for f in findings.run(snap) if f.category == category]


def brief(result):
    return sorted((f.istio_code, f.level, str(f.object), f.details.get("annotation")) for f in result)


@pytest.mark.parametrize("name, value, valid", [
    ("sidecar.istio.io/interceptionMode", "NONE", True),
    ("sidecar.istio.io/interceptionMode", "redirect", False),
    ("status.sidecar.istio.io/port", " 15020 ", True),  # Istio trims a port
    ("status.sidecar.istio.io/port", "0", True),
    ("status.sidecar.istio.io/port", "65536", False),
    ("readiness.status.sidecar.istio.io/failureThreshold", "4294967295", True),
    ("readiness.status.sidecar.istio.io/failureThreshold", "4294967296", False),
    ("readiness.status.sidecar.istio.io/initialDelaySeconds", " 1", False),  # not trimmed, as in Istio
    ("traffic.sidecar.istio.io/includeOutboundIPRanges", "*", True),
    ("traffic.sidecar.istio.io/includeOutboundIPRanges", "", True),
    ("traffic.sidecar.istio.io/includeOutboundIPRanges", "10.1.2.3/8,fd00::/8", True),
    ("traffic.sidecar.istio.io/excludeOutboundIPRanges", "10.0.0.1", False),  # a CIDR needs its prefix
    ("traffic.sidecar.istio.io/excludeOutboundIPRanges", "*", False),
    ("traffic.sidecar.istio.io/includeInboundPorts", "*", True),
    ("traffic.sidecar.istio.io/excludeInboundPorts", " 80, 443 ", True),
    ("traffic.sidecar.istio.io/excludeOutboundPorts", "80,", False),
    ("prometheus.istio.io/merge-metrics", "True", True),
    ("prometheus.istio.io/merge-metrics", "yes", False),
    ("proxy.istio.io/config", "{}", True),
    ("proxy.istio.io/config", "concurrency: 0\ninterceptionMode: TPROXY", True),
    ("proxy.istio.io/config", "- a list", False),
    ("proxy.istio.io/config", "discoveryAddress: istiod", False),
    ("sidecar.istio.io/agentLogLevel", "debug", True),
    ("sidecar.istio.io/agentLogLevel", "default:loud", False),
    ("sidecar.istio.io/componentLogLevel", "misc:error,rbac:debug", True),
    ("sidecar.istio.io/componentLogLevel", "error", False),
    ("sidecar.istio.io/statsHistogramBuckets", '{"istiocustom": [1, "5"]}', False),
    ("sidecar.istio.io/userVolumeMount", '[{"name": "x", "mountPath": "/x"}]', True),
    ("sidecar.istio.io/discoveryAddress", "istiod.istio-system.svc:15012", True),
])
def test_value_formats(name, value, valid):
    assert (specs.FORMATS[name](value) is None) is valid


def test_every_formatted_annotation_is_a_known_pod_annotation():
    for name in specs.FORMATS:
        assert specs.ANNOTATIONS[name][0] == ("Pod",), name
    assert specs.is_istio_annotation("istio.io/rev") and specs.is_istio_annotation("kubernetes.io/ingress.class")
    assert not specs.is_istio_annotation("kubernetes.io/psp") and not specs.is_istio_annotation("helm.sh/hook")


def test_the_valid_input_has_no_annotation_findings_and_the_invalid_one_each():
    assert run(load_yaml(DATA / "analyze" / "annotations-valid.yaml")) == []
    result = run(load_yaml(DATA / "analyze" / "annotations-invalid.yaml"))
    invalid = {f.details["annotation"] for f in result if f.istio_code == "IST0125"}
    assert invalid == {
        "sidecar.istio.io/interceptionMode", "status.sidecar.istio.io/port",
        "readiness.status.sidecar.istio.io/periodSeconds", "traffic.sidecar.istio.io/includeOutboundIPRanges",
        "traffic.sidecar.istio.io/excludeInboundPorts", "prometheus.istio.io/merge-metrics", "proxy.istio.io/config",
        "sidecar.istio.io/logLevel", "sidecar.istio.io/componentLogLevel", "sidecar.istio.io/userVolume",
        "sidecar.istio.io/proxyImageType"}
    assert ("IST0108", "warning", "Service default/misplaced", "sidecar.istio.io/proxyMemroy") in brief(result)
    assert ("IST0107", "warning", "Service default/misplaced", "sidecar.istio.io/proxyCPU") in brief(result)
    assert {(f.istio_code, f.details["annotation"]) for f in result if f.level == "info"} == {
        ("IST0135", "sidecar.istio.io/inject"), ("IST0135", "sidecar.istio.io/extraStatTags")}
    ours = [f.message for f in result if f.details.get("annotation") == "sidecar.istio.io/logLevel"]
    assert "istioctl analyze does not check this one" in ours[0]


def test_deprecated_inject_annotation_is_quiet_when_the_label_is_there_too():
    both = pod("both", "default", labels={"sidecar.istio.io/inject": "false"},
               annotations={"sidecar.istio.io/inject": "false"})
    assert run([both]) == []


def test_workload_pods_are_checked_once_on_the_workload_and_templates_offline():
    bad = {"readiness.status.sidecar.istio.io/periodSeconds": "soon"}
    online = [namespace("shop"), *[pod(f"web-{i}", "shop", owner=("Deployment", "web"), annotations=bad)
                                   for i in range(3)]]
    assert brief(run(online, offline=False)) == [
        ("IST0125", "warning", "Deployment shop/web", "readiness.status.sidecar.istio.io/periodSeconds")]
    offline = [namespace("shop"), deployment("web", "shop", template_annotations=bad)]
    [finding] = run(offline)
    assert str(finding.object) == "Deployment shop/web" and "(in its pod template)" in finding.message


def test_a_non_string_value_is_invalid_as_kubernetes_would_refuse_it():
    [finding] = run([pod("p", "default", annotations={"status.sidecar.istio.io/port": 15020})])
    assert finding.istio_code == "IST0125" and "is not a string" in finding.message


def test_the_resource_annotations_stay_mesh_res_002s():
    meshed = [namespace("shop", {"istio-injection": "enabled"}),
              deployment("api", "shop", template_annotations={"sidecar.istio.io/proxyCPU": "lots"})]
    assert run(meshed) == []
    assert [f.id for f in run(meshed, category="resources")] == ["MESH-RES-002"]

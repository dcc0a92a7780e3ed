"""Sidecar and injection semantics against Istio's real injected pod specs."""

import pytest

from kubectl_mesh import mesh
from tests.helpers import load_yaml, namespace, pod


def _first(path):
    return load_yaml(path)[0]


@pytest.mark.parametrize("path,layout", [
    ("injected/hello-old-version.yaml.injected", "container"),
    ("injected/statefulset-old-version.yaml.injected", "container"),
    ("injected/native-sidecar-opt-out.yaml.injected", "container"),
    ("injected/hello.yaml.injected", "native"),
    ("injected/native-sidecar.yaml.injected", "native"),
    ("injected/resource_annotations.yaml.injected", "native"),
])
def test_real_injected_specs_have_a_sidecar(path, layout):
    obj = _first(path)
    assert mesh.has_sidecar(obj)
    assert mesh.sidecar_layout(obj) == layout


def test_init_container_named_istio_proxy_without_restart_policy_is_not_a_sidecar():
    obj = _first("injected/native-sidecar.yaml.injected")
    for container in obj["spec"]["initContainers"]:
        container.pop("restartPolicy", None)
    assert not mesh.has_sidecar(obj)


def test_plain_pod_has_no_sidecar():
    assert not mesh.has_sidecar(pod("web-1"))
    assert mesh.sidecar_layout(pod("web-1")) is None


def test_native_sidecar_resources_come_from_annotations():
    obj = _first("injected/resource_annotations.yaml.injected")
    proxy = mesh.sidecar_container(mesh.pod_spec(obj))
    assert proxy["restartPolicy"] == "Always"
    assert proxy["resources"]["requests"]


@pytest.mark.parametrize("labels,mode", [
    ({"istio-injection": "enabled"}, "enabled"),
    ({"istio.io/rev": "canary"}, "revision"),
    ({"istio-injection": "enabled", "istio.io/rev": "canary"}, "enabled"),
    ({"istio-injection": "disabled", "istio.io/rev": "canary"}, "disabled"),
    ({"istio.io/dataplane-mode": "ambient"}, "ambient"),
    ({}, "none"),
])
def test_injection_mode_first_label_wins(labels, mode):
    assert mesh.injection_mode(namespace("x", labels)) == mode


def test_opt_out_by_label_annotation_and_host_network():
    assert mesh.opted_out(pod("a", labels={"sidecar.istio.io/inject": "false"}))
    assert mesh.opted_out(pod("a", annotations={"sidecar.istio.io/inject": "false"}))
    # the label wins over the annotation, as in the analyzer's test input
    assert not mesh.opted_out(pod("a", labels={"sidecar.istio.io/inject": "true"},
                                  annotations={"sidecar.istio.io/inject": "false"}))
    host = pod("a")
    host["spec"]["hostNetwork"] = True
    assert mesh.opted_out(host)
    assert not mesh.opted_out(pod("a"))


def test_expects_sidecar():
    enabled = namespace("x", {"istio-injection": "enabled"})
    plain = namespace("x")
    assert mesh.expects_sidecar(pod("a"), enabled)
    assert not mesh.expects_sidecar(pod("a", labels={"sidecar.istio.io/inject": "false"}), enabled)
    assert not mesh.expects_sidecar(pod("a"), plain)
    assert mesh.expects_sidecar(pod("a", labels={"sidecar.istio.io/inject": "true"}), plain)
    assert not mesh.expects_sidecar(pod("a", labels={"sidecar.istio.io/inject": "true"}),
                                    namespace("x", {"istio-injection": "disabled"}))


@pytest.mark.parametrize("labels,conflict", [
    ({"istio-injection": "enabled", "istio.io/rev": "canary"}, True),
    ({"istio-injection": "enabled", "istio.io/dataplane-mode": "ambient"}, True),
    ({"istio.io/rev": "test", "istio.io/dataplane-mode": "ambient"}, True),
    ({"istio-injection": "disabled", "istio.io/dataplane-mode": "ambient"}, False),
    ({"istio-injection": "disabled", "istio.io/rev": "test"}, False),
    ({"istio-injection": "enabled"}, False),
])
def test_conflicting_injection_labels_as_istioctl_analyze(labels, conflict):
    assert bool(mesh.conflicting_injection_labels(namespace("x", labels))) is conflict


def test_proxy_readiness_from_container_and_init_statuses():
    assert mesh.proxy_ready(pod("a", sidecar="container", proxy_ready=False)) is False
    assert mesh.proxy_ready(pod("a", sidecar="native")) is True
    assert mesh.proxy_ready(pod("a")) is None


def test_selector_matches_expressions():
    labels = {"app": "web", "tier": "front"}
    assert mesh.selector_matches({"matchLabels": {"app": "web"}}, labels)
    assert not mesh.selector_matches({"matchLabels": {"app": "api"}}, labels)
    assert mesh.selector_matches({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["front"]}]}, labels)
    assert not mesh.selector_matches({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["front"]}]},
                                     labels)
    assert mesh.selector_matches({"matchExpressions": [{"key": "x", "operator": "DoesNotExist"}]}, labels)
    assert not mesh.selector_matches({"matchExpressions": [{"key": "x", "operator": "Exists"}]}, labels)
    assert not mesh.selector_matches(None, labels)

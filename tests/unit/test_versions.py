"""`version`'s logic: image tags to versions, control planes, proxies by count, skew."""

from __future__ import annotations

import pytest

from kubectl_mesh import versions
from kubectl_mesh.report import PASS, WARN


@pytest.mark.parametrize("image,expected", [
    ("docker.io/istio/proxyv2:1.32.0", "1.32.0"),
    ("gcr.io/istio-release/proxyv2:1.31.2-distroless", "1.31.2"),
    ("registry.local:5000/istio/pilot:1.30.1", "1.30.1"),
    ("docker.io/istio/pilot:1.33.0-beta.1", "1.33.0-beta.1"),
    ("registry.istio.io/testing/proxyv2:latest", None),  # as in Istio's own injection fixtures
    ("docker.io/istio/proxyv2@sha256:0123abcd", None),
    ("registry.local:5000/istio/proxyv2", None),
    ("", None),
    (None, None),
])
def test_image_version(image, expected):
    assert versions.image_version(image) == expected


def _istiod(rev="default", image="docker.io/istio/pilot:1.32.0", labels=None, ready=1):
    name = "istiod" if rev == "default" else f"istiod-{rev}"
    return {"kind": "Deployment",
            "metadata": {"name": name, "namespace": "istio-system",
                         "labels": {"app": "istiod", "istio.io/rev": rev, **(labels or {})}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "istiod", "istio.io/rev": rev}},
                     "template": {"spec": {"containers": [{"name": "discovery", "image": image}]}}},
            "status": {"readyReplicas": ready}}


def _istiod_pod(rev="default", image="docker.io/istio/pilot:1.32.0", name="istiod-abc"):
    return {"kind": "Pod", "metadata": {"name": name, "namespace": "istio-system",
                                        "labels": {"app": "istiod", "istio.io/rev": rev}},
            "spec": {"containers": [{"name": "discovery", "image": image}]}}


def test_control_plane_version_is_what_its_pods_run():
    planes = versions.control_planes([
        _istiod(labels={"app.kubernetes.io/version": "1.32.0"}), _istiod_pod(image="docker.io/istio/pilot:1.32.1"),
        _istiod("canary", image="docker.io/istio/pilot:1.33.0", ready=0),
    ])
    assert planes == [
        {"namespace": "istio-system", "name": "istiod", "revision": "default", "version": "1.32.1",
         "versions": ["1.32.1"], "ready": "1/1"},
        {"namespace": "istio-system", "name": "istiod-canary", "revision": "canary", "version": "1.33.0",
         "versions": ["1.33.0"], "ready": "0/1"},
    ]


def test_control_plane_version_from_istios_label_when_the_image_has_no_release_tag():
    plane, = versions.control_planes([_istiod(image="registry.local/pilot:stable",
                                              labels={"app.kubernetes.io/version": "1.32.0"})])
    assert plane["version"] == "1.32.0"


def test_data_plane_counts_proxies_by_version():
    lines = ("my-app\t{\"revision\":\"default\"}\tdocker.io/istio/proxyv2:1.32.0 \n"
             "my-app\t{\"revision\":\"default\"}\tdocker.io/istio/proxyv2:1.32.0 \n"
             "legacy\t\tdocker.io/istio/proxyv2:1.31.2 \n"
             "plain\t\t\n"
             "native\t{\"revision\":\"canary\"}\tdocker.io/istio/proxyv2:1.33.0 \n")
    assert versions.data_plane(lines) == [
        {"version": "1.32.0", "proxies": 2, "revisions": ["default"], "namespaces": ["my-app"]},
        {"version": "1.31.2", "proxies": 1, "revisions": ["default"], "namespaces": ["legacy"]},
        {"version": "1.33.0", "proxies": 1, "revisions": ["canary"], "namespaces": ["native"]},
    ]


def test_skew_flags_proxies_no_control_plane_runs():
    planes = [{"version": "1.32.0", "revision": "default"}]
    proxies = [{"version": "1.32.0", "proxies": 3, "namespaces": ["a"]},
               {"version": "1.31.2", "proxies": 1, "namespaces": ["legacy"]}]
    checks = {c.id: c for c in versions.skew_checks("v1.32.4", "v1.32.0", planes, proxies)}
    assert checks["kubectl-skew"].result == PASS
    skew = checks["data-plane-skew"]
    assert skew.result == WARN
    assert skew.message == "1 proxy runs a version no control plane runs: 1.31.2 (1 proxy); control plane 1.32.0"
    assert "kubectl rollout restart deployment -n legacy" in skew.hint


def test_no_skew_and_kubectl_too_far_from_the_cluster():
    checks = {c.id: c for c in versions.skew_checks(
        "v1.34.1", "v1.31.0", [{"version": "1.32.0", "revision": "default"}],
        [{"version": "1.32.0", "proxies": 2, "namespaces": ["a"]}])}
    assert checks["data-plane-skew"].result == PASS
    assert checks["kubectl-skew"].result == WARN
    assert "3 minor versions" in checks["kubectl-skew"].message


def test_text_lines_read_like_istioctl_version():
    doc = {"plugin": "0.1.0", "kubectl": "v1.32.4", "cluster": "v1.32.0",
           "controlPlanes": [{"namespace": "istio-system", "name": "istiod", "revision": "default",
                              "version": "1.32.0", "ready": "1/1"}],
           "dataPlane": [{"version": "1.32.0", "proxies": 4}, {"version": None, "proxies": 1}],
           "dataPlaneScope": "all namespaces"}
    assert versions.text_lines(doc) == [
        "plugin version:        0.1.0",
        "kubectl version:       v1.32.4",
        "cluster version:       v1.32.0",
        "control plane version: 1.32.0 (revision default, istio-system/istiod, 1/1 ready)",
        "data plane version:    1.32.0 (4 proxies), unknown (1 proxy) (all namespaces)",
    ]

"""Agreement with `istioctl analyze` on Istio's own analyzer inputs.

Each input is copied into tests/data/analyze/ with its source (repository, path,
commit) in its first lines. For each, CASES lists what istioctl reports, taken
from the table of Istio's pkg/config/analysis/analyzers/analyzers_test.go (which
runs one analyzer per input; where another of istioctl's analyzers reports on
the same input, that is listed too and marked), with why; and the level `diagnose` gives it where
that differs from Istio's, with the reason (the README's agreement section).

For every input `diagnose -f` must report each of istioctl's findings (same
code, same object, as many times), and nothing else at error or warning level
under a code we claim (an info finding, such as a host whose namespace the
input does not declare, may be added: it fails nothing). No process is started
(the `fp` fixture would refuse any).
"""

from __future__ import annotations

from collections import Counter

import pytest

from tests.helpers import DATA

ANALYZE = DATA / "analyze"

# Istio's level of each code we claim (pkg/config/analysis/msg/messages.yaml).
ISTIO_LEVEL = {
    "IST0101": "error", "IST0102": "info", "IST0103": "warning", "IST0107": "warning", "IST0108": "warning",
    "IST0109": "error", "IST0112": "error", "IST0123": "warning", "IST0125": "warning", "IST0135": "info",
    "IST0148": "info", "IST0158": "warning", "IST0173": "error", "IST0174": "warning",
}
CLAIMED = set(ISTIO_LEVEL)

# (input files, "mesh:FILE" a mesh config) -> [(code, object, our level or None for Istio's, why)]
CASES: dict[tuple[str, ...], list[tuple[str, str, str | None, str]]] = {
    ("injection.yaml",): [
        ("IST0102", "Namespace bar", None, "no istio-injection or istio.io/rev label, not ambient"),
        ("IST0103", "Pod default/noninjectedpod", None, "istio-injection=enabled, no istio-proxy, not opted out"),
        ("IST0123", "Namespace busted", None, "istio-injection=enabled and istio.io/rev"),
        ("IST0123", "Namespace multi-ns-1", None, "istio-injection=enabled and istio.io/rev"),
        ("IST0123", "Namespace multi-ns-2", None, "istio-injection=enabled and ambient"),
        ("IST0123", "Namespace multi-ns-3", None, "istio.io/rev and ambient"),
    ],
    ("injection.yaml", "sidecar-injector-enabled-nsbydefault.yaml"): [
        ("IST0148", "Namespace bar", None, "no label, and the injector has enableNamespacesByDefault"),
        ("IST0103", "Pod default/noninjectedpod", None, "as without the ConfigMap"),
        ("IST0123", "Namespace busted", None, "as without the ConfigMap"),
        ("IST0123", "Namespace multi-ns-1", None, "as without the ConfigMap"),
        ("IST0123", "Namespace multi-ns-2", None, "as without the ConfigMap"),
        ("IST0123", "Namespace multi-ns-3", None, "as without the ConfigMap"),
        # Not in the row (injection.Analyzer only); istioctl's ImageAnalyzer on the same input:
        ("IST0158", "Namespace default", None, "injectedpod runs proxyv2:1.3.0-rc.2, the injector 1.3.1"),
    ],
    ("injection-with-mismatched-sidecar.yaml", "sidecar-injector-configmap.yaml"): [
        ("IST0158", "Namespace enabled-namespace", None, "details-v1-pod-old runs 1.3.0, the injector 1.3.1"),
        # Not in the row (ImageAnalyzer only); istioctl's injection.Analyzer on the same input:
        ("IST0102", "Namespace default", None, "no injection label"),
    ],
    ("injection-with-mismatched-sidecar.yaml", "sidecar-injector-configmap-absolute-override.yaml",
     "sidecar-injector-configmap-with-revision-canary.yaml"): [
        ("IST0158", "Namespace enabled-namespace", None, "the absolute image docker.io/istio/proxyv2:1.3.1"),
        ("IST0158", "Namespace revision-namespace", None, "istio.io/rev=canary: the canary injector's image"),
        ("IST0102", "Namespace default", None, "(injection.Analyzer) no injection label"),
    ],
    ("injection-native-sidecars.yaml", "sidecar-injector-configmap.yaml"): [
        ("IST0158", "Namespace enabled-namespace-native", None, "native sidecars count: an old proxy init container"),
    ],
    ("injection-image-distroless.yaml", "sidecar-injector-configmap.yaml", "mesh:meshconfig-distroless.yaml"): [
        ("IST0158", "Namespace enabled-namespace", None, "1.3.0; the distroless 1.3.1 is the same release"),
    ],
    ("injection-image-distroless-no-meshconfig.yaml", "sidecar-injector-configmap.yaml"): [],  # variants match
    ("misannotated.yaml",): [
        ("IST0108", "Service default/httpbin", None, "networking.istio.io/exportThree: no such annotation"),
        ("IST0125", "Pod default/invalid-annotations", None, "readiness initialDelaySeconds: bar is no integer"),
        ("IST0107", "Pod default/grafana-test", None, "kubernetes.io/ingress.class belongs on an Ingress"),
        ("IST0107", "Deployment default/fortio-deploy", None, "statsInclusionPrefixes on the Deployment, not a Pod"),
        ("IST0107", "Namespace staging", None, "kubernetes.io/ingress.class belongs on an Ingress"),
        ("IST0135", "Deployment default/fortio-deploy", None, "statsInclusionPrefixes is deprecated"),
        # Not in the row (annotations.K8sAnalyzer only); istioctl's injection.Analyzer on it:
        ("IST0102", "Namespace staging", None, "no injection label"),
    ],
    ("annotations-valid.yaml",): [],  # ours: every annotation with a known format, valid, in place
    ("destinationrule-subsets-not-select-pods.yaml",): [
        ("IST0173", "DestinationRule default/subsets-not-select-pods", "warning",
         "subset version=v3 selects no pod (none behind the Service); ours: no route sends it traffic"),
    ],
    ("destinationrule-subsets-with-topology-labels.yaml",): [],  # subsets match through the node's labels
    ("destinationrule-empty-topology-labels.yaml",): [
        ("IST0173", "DestinationRule default/empty-topology-labels", "warning",
         'region: "" never matches: Istio does not copy empty locality labels; ours: unrouted'),
    ],
    ("destinationrule-with-fake-host.yaml",): [
        ("IST0174", "DestinationRule default/fake-host", "info",
         "no Service fake-svc; ours: the input declares nothing in namespace default, so unconfirmed"),
    ],
    ("virtualservice_destinationrules.yaml",): [
        ("IST0101", "VirtualService default/reviews-bogussubset", None, "subset bogus: the rule defines only v1"),
        ("IST0101", "VirtualService default/reviews-mirror-bogussubset", None, "mirror to subset bogus"),
    ],
    ("virtualservice_destinationhosts.yaml",): [
        ("IST0101", "VirtualService default/reviews-bogushost", None, "no Service reviews-bogus"),
        ("IST0101", "VirtualService default/reviews-bookinfo-other", None,
         "the ServiceEntry is exported to its own namespace only"),
        ("IST0101", "VirtualService default/reviews-mirror-bogushost", None, "mirror host reviews-bogus"),
        ("IST0101", "VirtualService default/reviews-bogusport", None, "host:port reviews:999 (it exposes 42)"),
        ("IST0112", "VirtualService default/reviews-2port-missing", None, "no port to a Service with two"),
        ("IST0101", "VirtualService istio-system/cross-namespace-details", None,
         "details is exported to banana only"),
        ("IST0101", "VirtualService hello/hello-export-to-bogus", None,
         "the VirtualService is exported to bogus, where hello is not"),
        # Not in this input's row (it runs DestinationHostAnalyzer only), but what istioctl's
        # ConflictingMeshGatewayHostsAnalyzer reports for it: in namespace bogus both apply.
        ("IST0109", "VirtualService hello/hello", None, "host hello, exported to all"),
        ("IST0109", "VirtualService hello/hello-export-to-bogus", None, "host hello, exported to bogus"),
    ],
    ("virtualservice_conflictingmeshgatewayhosts.yaml",): [
        ("IST0109", f"VirtualService {name}", None, why) for name, why in (
            ("team3/ratings", "exported to all, same host as team4/ratings"),
            ("team4/ratings", "same host as team3/ratings, mesh among its gateways"),
            ("foo/ratings", "same host as bar/ratings"),
            ("bar/ratings", "same host as foo/ratings, mesh among its gateways"),
            ("foo/productpage", "same host as foo/bogus-productpage"),
            ("foo/bogus-productpage", "same host as foo/productpage"),
            ("team2/ratings", "google.com, also claimed by bar/ratings exported to all"),
        )
    ],
    ("virtualservice_conflictingmeshgatewayhosts_with_exportto.yaml",): [
        ("IST0109", f"VirtualService {name}", None, why) for name, why in (
            ("foo/productpage", "*.productpage in both, both exported to all"),
            ("bar/productpage", "*.productpage in both, both exported to all"),
            ("foo/productpage-c", "exported to foo, bar's is exported to all"),
            ("bar/productpage-c", "exported to all, foo's to foo"),
            ("foo/productpage-d", "*.productpage.d matches bar's *.d exported to all"),
            ("bar/productpage-d", "*.d exported to all matches foo's *.productpage.d"),
        )
    ],
}


def _diagnose(mesh_cli, names):
    args = []
    for name in names:
        if name.startswith("mesh:"):  # a MeshConfig, as istioctl analyze --meshConfigFile takes it
            args += ["--mesh-config", str(ANALYZE / name[len("mesh:"):])]
        else:
            args += ["-f", str(ANALYZE / name)]
    result = mesh_cli("diagnose", *args, "-o", "json")
    return result, result.json()


@pytest.mark.parametrize("names", sorted(CASES), ids=lambda n: "+".join(n))
def test_same_objects_for_the_same_problems(fp, mesh_cli, names):
    result, doc = _diagnose(mesh_cli, names)
    ours = [(c["istioCode"], c["subject"], c["level"]) for c in doc["checks"] if c["istioCode"]]
    expected = CASES[names]
    # every finding istioctl reports: same code, same object, as many times
    missing = Counter((code, obj) for code, obj, _, _ in expected) - Counter((c, o) for c, o, _ in ours)
    assert not missing, f"istioctl reports these, diagnose does not: {sorted(missing.elements())}"
    # at Istio's level, or the documented one of ours
    for code, obj, level, _ in expected:
        levels = {lv for c, o, lv in ours if (c, o) == (code, obj)}
        assert (level or ISTIO_LEVEL[code]) in levels, (code, obj, levels)
    # nothing else at error or warning level under a claimed code
    extra = Counter((c, o) for c, o, lv in ours if c in CLAIMED and lv != "info") \
        - Counter((code, obj) for code, obj, _, _ in expected)
    assert not extra, f"diagnose reports these, istioctl does not: {sorted(extra.elements())}"
    assert len(fp.calls) == 0  # no cluster, no process
    errors_expected = any((level or ISTIO_LEVEL[code]) == "error" for code, _, level, _ in expected)
    assert result.exit_code == (1 if errors_expected else 0)


def test_the_topology_input_has_no_findings_at_all(fp, mesh_cli):
    result, doc = _diagnose(mesh_cli, ["destinationrule-subsets-with-topology-labels.yaml"])
    assert doc["checks"] == [] and doc["success"] is True


def test_mirror_and_route_findings_name_the_bogus_subset(fp, mesh_cli):
    _, doc = _diagnose(mesh_cli, ["virtualservice_destinationrules.yaml"])
    bogus = {c["subject"]: c for c in doc["checks"] if c["istioCode"] == "IST0101" and c["level"] == "error"}
    assert bogus["VirtualService default/reviews-bogussubset"]["details"]["where"] == ["http[0].route[0]"]
    assert bogus["VirtualService default/reviews-mirror-bogussubset"]["details"]["where"] == ["http[0].mirror"]
    assert all(c["details"]["subset"] == "bogus" for c in bogus.values())


def test_unrouted_subset_says_istioctl_rates_it_an_error(fp, mesh_cli):
    _, doc = _diagnose(mesh_cli, ["destinationrule-subsets-not-select-pods.yaml"])
    [finding] = [c for c in doc["checks"] if c["istioCode"] == "IST0173"]
    assert finding["level"] == "warning" and finding["details"]["istioLevel"] == "error"
    assert "istioctl analyze rates this an error" in finding["message"]


def test_visibility_findings_say_where_the_host_is_exported(fp, mesh_cli):
    _, doc = _diagnose(mesh_cli, ["virtualservice_destinationhosts.yaml"])
    by_subject = {c["subject"]: c["message"] for c in doc["checks"] if c["level"] == "error"}
    assert "exports it to namespace banana, not to namespace istio-system" in \
        by_subject["VirtualService istio-system/cross-namespace-details"]
    hidden = [c["message"] for c in doc["checks"]
              if c["subject"] == "VirtualService hello/hello-export-to-bogus" and c["istioCode"] == "IST0101"]
    assert "not to the namespaces the VirtualService is exported to (bogus)" in hidden[0]
    assert "port 999, but Service default/reviews exposes ports 42" in by_subject["VirtualService default/reviews-bogusport"]


def test_an_istio_proxy_init_container_that_exits_is_ours_alone(fp, mesh_cli):
    _, doc = _diagnose(mesh_cli, ["injection-native-sidecars.yaml", "sidecar-injector-configmap.yaml"])
    exited = [c for c in doc["checks"] if c["id"] == "MESH-INJ-006"]
    assert [(c["istioCode"], c["subject"]) for c in exited] == [
        (None, "Pod enabled-namespace-native/details-v1-pod-exited-proxy")]
    assert "istioctl analyze counts it as injected" in exited[0]["message"]
    assert not any(c["istioCode"] == "IST0103" for c in doc["checks"])

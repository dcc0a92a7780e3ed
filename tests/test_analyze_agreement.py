"""Agreement with `istioctl analyze` on Istio's own analyzer inputs.

For each input (copied from shared/reference/istio/analyze/ into
tests/data/analyze/), `diagnose -f` must report the same objects for the
same problems, at the same level, as the reference README says istioctl
analyze does, and nothing else at error or warning level (info findings,
such as a destination host that the input's manifests do not declare, may
be added). No process is
started (the `fp` fixture would refuse any).
"""

from __future__ import annotations

import pytest

from tests.helpers import DATA

ANALYZE = DATA / "analyze"

# file -> {(Istio code, level, object)}: what istioctl analyze reports.
EXPECTED = {
    "injection.yaml": {
        ("IST0102", "info", "Namespace bar"),
        ("IST0103", "warning", "Pod default/noninjectedpod"),
        ("IST0123", "warning", "Namespace busted"),
        ("IST0123", "warning", "Namespace multi-ns-1"),
        ("IST0123", "warning", "Namespace multi-ns-2"),
        ("IST0123", "warning", "Namespace multi-ns-3"),
    },
    "destinationrule-subsets-not-select-pods.yaml": {
        ("IST0173", "warning", "DestinationRule default/subsets-not-select-pods"),
    },
    "virtualservice_destinationrules.yaml": {
        ("IST0101", "error", "VirtualService default/reviews-bogussubset"),
        ("IST0101", "error", "VirtualService default/reviews-mirror-bogussubset"),
    },
    "destinationrule-subsets-with-topology-labels.yaml": set(),
}


def _diagnose(mesh_cli, name):
    result = mesh_cli("diagnose", "-f", str(ANALYZE / name), "-o", "json")
    doc = result.json()
    findings = {(c["istioCode"], c["level"], c["subject"]) for c in doc["checks"]}
    return result, doc, findings


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_same_objects_for_the_same_problems(fp, mesh_cli, name):
    result, doc, findings = _diagnose(mesh_cli, name)
    expected = EXPECTED[name]
    kinds = {(code, level) for code, level, _ in expected}
    # every problem istioctl reports, on the same object, at the same level
    assert expected <= findings
    # for those problems at those levels, no other object
    assert {f for f in findings if f[:2] in kinds} == expected
    # nothing else at error or warning level
    assert {f for f in findings if f[1] in ("error", "warning")} == {f for f in expected if f[1] != "info"}
    assert len(fp.calls) == 0  # no cluster, no process
    assert result.exit_code == (1 if any(level == "error" for _, level, _ in expected) else 0)


def test_the_topology_input_has_no_findings_at_all(fp, mesh_cli):
    result, doc, findings = _diagnose(mesh_cli, "destinationrule-subsets-with-topology-labels.yaml")
    assert findings == set() and doc["success"] is True


def test_mirror_and_route_findings_name_the_bogus_subset(fp, mesh_cli):
    _, doc, _ = _diagnose(mesh_cli, "virtualservice_destinationrules.yaml")
    bogus = {c["subject"]: c for c in doc["checks"] if c["istioCode"] == "IST0101" and c["level"] == "error"}
    assert bogus["VirtualService default/reviews-bogussubset"]["details"]["where"] == ["http[0].route[0]"]
    assert bogus["VirtualService default/reviews-mirror-bogussubset"]["details"]["where"] == ["http[0].mirror"]
    assert all(c["details"]["subset"] == "bogus" for c in bogus.values())

"""Suppression rules as istioctl analyze's: its glob, its resource names and kubectl's."""

from __future__ import annotations

import pytest

from kubectl_mesh.errors import UsageError
from kubectl_mesh.findings.model import Finding, Ref
from kubectl_mesh.findings.suppress import glob, names_of, parse, unknown_codes, why_suppressed


@pytest.mark.parametrize("pattern, text, matches", [
    ("IST0102", "IST0102", True), ("IST0102", "IST01023", False),
    ("*", "", True), ("Namespace *", "Namespace bar", True), ("*.default", "DestinationRule dr.default", True),
    ("Deployment web.*", "Deployment web.shop", True), ("Deployment web.*", "Deployment webx.shop", False),
    ("a*b*c", "abc", True), ("a*b*c", "aXbYc", True), ("a*b*c", "acb", False), ("ab*ba", "aba", False),
    ("Pod [x]", "Pod [x]", True),  # brackets are themselves, not a character class
])
def test_glob(pattern, text, matches):
    assert glob(pattern, text) is matches


def test_resource_names_istioctl_and_kubectl_forms():
    assert names_of(Ref("Deployment", "shop", "web")) == ["Deployment web.shop", "Deployment shop/web"]
    assert names_of(Ref("Namespace", None, "shop")) == ["Namespace shop"]


def test_parse_and_unknown_codes():
    rules = parse(["IST0102=Namespace  bar", "MESH-INJ-*=Namespace *"])
    assert [str(r) for r in rules] == ["IST0102=Namespace bar", "MESH-INJ-*=Namespace *"]
    assert unknown_codes(rules + parse(["IST0001=Pod x"]), {"IST0102"}) == ["IST0001"]
    for bad in ("IST0102", "=Namespace x", "IST0102=", "a=b=c"):
        with pytest.raises(UsageError):
            parse([bad])


def test_why_suppressed_by_rule_or_by_annotation():
    finding = Finding("MESH-INJ-001", "injection", "info", Ref("Namespace", None, "bar"), "m", "f", "IST0102")
    assert why_suppressed(finding, parse(["IST0102=Namespace bar"]), None) == "--suppress IST0102=Namespace bar"
    assert why_suppressed(finding, parse(["IST0103=Namespace bar"]), None) is None

    class Snap:
        def get(self, kind, namespace, name):
            return {"metadata": {"annotations": {"galley.istio.io/analyze-suppress": "IST0108,MESH-INJ-001"}}}

    assert why_suppressed(finding, [], Snap()).startswith("annotation galley.istio.io/analyze-suppress=")

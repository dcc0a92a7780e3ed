"""Messages read as English, through the real kubectl: a namespace where every count is 1
(one workload of one pod, one file of one object), so a message that pluralises naively
(`1 pods`, `1 of 1 pods lack`, `1 objects`) or doubles a space shows in what users read."""

from __future__ import annotations

import re

from tests.e2e.manifests import documents, namespace, service, workload

SOLO = documents(
    namespace("solo", injection=None),
    service("web", "solo"),
    workload("web", "solo", pod_labels={"app": "web", "version": "v1"}),
)
ONE_OBJECT = """apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: web, namespace: solo}
spec: {host: web}
"""
NOUNS = ("pod", "proxy", "workload", "warning", "error", "object", "file", "route", "change", "check",
         "namespace", "service", "subset", "finding", "restart", "rollout", "replica", "container", "policy",
         "DestinationRule", "VirtualService", "PeerAuthentication")
_PLURALS = "|".join(sorted({"proxies", "policies", *(n + "s" for n in NOUNS)}, key=len, reverse=True))
# `1 pods`, `of 1 pods`, `1 of 1 pods` (the count right before the noun is 1)
NAIVE_PLURAL = re.compile(rf"(?<![\d./:-])1 (?:{_PLURALS})\b")
# `1 of 3 pods of deployment/web have`: a count of 1 with a plural verb
PLURAL_VERB = re.compile(r"(?<![\d./:-])1 (?:of \d+ )?[a-z]+(?: of \S+)? (?:have|are|were|do|lack|carry|run|need)\b")
MARKS = ("✓ ", "! ", "✗ ", "- ", "~ ")


def english_problems(text: str) -> list[str]:
    """Naive plurals anywhere; doubled spaces in a check's message or hint, a plan step, a
    summary (tables and aligned screens keep their padding)."""
    problems = [f"naive plural {m.group(0)!r} in: {line}" for line in text.splitlines()
                for pattern in (NAIVE_PLURAL, PLURAL_VERB) for m in pattern.finditer(line)]
    lines = text.splitlines()
    for i, line in enumerate(lines):
        sentence = line.startswith(MARKS) or (line.startswith("    ") and i and lines[i - 1].startswith(MARKS)) \
            or (i == len(lines) - 1 and not line.startswith(" "))
        if sentence and re.search(r"\S  +\S", line.strip()):
            problems.append(f"doubled space in: {line}")
    return problems


def test_english_problems_are_found():
    assert english_problems("✗ deployment/web: 1 of 1 pods lack istio-proxy\n") != []
    assert english_problems("Diagnosis of 1 objects in 1 file\n") != []
    assert english_problems("! 1 of 1 pod of deployment/web have no istio-proxy\n") != []
    assert english_problems("✓ sidecars in solo: 1 pod x ~50 MB\n    go  there\n") != []
    assert english_problems("✓ 1 of 1 pod has istio-proxy; 11 pods, 2.1 pods\n1 passed, 1 warning, 0 failed\n") == []


def test_every_message_reads_as_english_when_counts_are_one(e2e, kubectl, mesh, tmp_path):
    e2e.cluster.load(SOLO, inject=False)
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "rule.yaml").write_text(ONE_OBJECT)
    runs = [
        ("advise", "solo", "--need", "mtls"),
        ("verify", "solo", "--no-istioctl"),
        ("enable", "solo", "--dry-run"),
        ("label", "solo"),  # labelled, not restarted yet: the pod lacks the proxy injection would give it
        ("diagnose", "solo"),
        ("mtls", "solo", "strict"),  # refused: the pod has no sidecar yet
        ("enable", "solo"),
        ("verify", "solo"),
        ("disable", "solo", "--dry-run"),  # before STRICT, which disable refuses
        ("mtls", "solo", "strict"),
        ("status", "solo"),
        ("diagnose", "solo"),
        ("diagnose", "-f", str(tmp_path / "manifests")),
    ]
    seen, problems = {}, []
    for args in runs:
        if args[0] == "label":
            kubectl("label", "namespace", "solo", "istio-injection=enabled")
            continue
        result = mesh(*args)
        assert result.returncode in (0, 1, 3), f"{args}: {result.returncode}\n{result.stderr}"
        seen.setdefault(" ".join(args), result.stdout)
        problems += [f"kubectl mesh {' '.join(args)}: {p}" for p in english_problems(result.stdout + result.stderr)]
    assert not problems, "\n".join(problems)
    # The sentences the counts of 1 used to break, as users now read them:
    assert "~ restart deployment/web: 1 of 1 pod lacks istio-proxy [planned]" in seen["enable solo --dry-run"]
    assert "~ restart deployment/web: 1 pod still carries istio-proxy [planned]" in seen["disable solo --dry-run"]
    assert "sidecars in solo: 1 pod x ~50 MB" in seen["advise solo --need mtls"]
    assert "✗ 1 of 1 pod has no sidecar in solo" in seen["mtls solo strict"]
    assert "1 of 1 pod of deployment/web has no istio-proxy although" in seen["diagnose solo"]
    assert seen[f"diagnose -f {tmp_path / 'manifests'}"].startswith("Diagnosis of 1 object in 1 file; no cluster used")

"""`advise`: the guide's decision table and rule, plus what the cluster has.

Decision rule (guide): use Gateway API alone unless you need mTLS between
services, traffic shifting, or circuit breaking.
"""

from __future__ import annotations

import click

from kubectl_mesh import english, errors
from kubectl_mesh.cluster_names import complete_namespaces
from kubectl_mesh.command import mesh_command
from kubectl_mesh.report import PASS, SKIP, WARN, Check, Report

# need -> (what it is, Gateway API + NetworkPolicy, Istio), from the guide's table.
NEEDS: dict[str, tuple[str, str, str]] = {
    "external-https": ("External HTTPS routing", "Yes", "Yes (via Istio Gateway)"),
    "path-routing": ("Path/header-based routing", "Yes", "Yes"),
    "mtls": ("mTLS between services", "No", "Yes — automatic with sidecar"),
    "canary": ("Traffic shifting (canary)", "No", "Yes — VirtualService weights"),
    "circuit-breaking": ("Circuit breaking", "No", "Yes — DestinationRule"),
    "tracing": ("Distributed tracing (auto)", "No (manual instrumentation)", "Yes — sidecar injects trace headers"),
    "multi-tenant": ("Multi-tenant isolation", "NetworkPolicy only", "NetworkPolicy + mTLS identity"),
}
ALIASES = {
    "traffic-shifting": "canary", "circuit-breaker": "circuit-breaking", "circuit-breakers": "circuit-breaking",
    "https": "external-https", "ingress": "external-https", "routing": "path-routing",
    "header-routing": "path-routing", "isolation": "multi-tenant", "multi-tenancy": "multi-tenant",
}
# The needs the decision rule says only Istio meets.
MESH_NEEDS = ("mtls", "canary", "circuit-breaking")
SIDECAR_MEMORY_MB = 50
HOP_LATENCY_MS = 2
GATEWAY_API_GROUP = "gateway.networking.k8s.io"


def parse_needs(text: str | None) -> list[str]:
    needs: list[str] = []
    for raw in (text or "").split(","):
        word = raw.strip().lower()
        if not word:
            continue
        need = ALIASES.get(word, word)
        if need not in NEEDS:
            raise errors.UsageError(
                f'unknown need "{raw.strip()}": choose from {", ".join(NEEDS)}'
            )
        if need not in needs:
            needs.append(need)
    return needs


def decide(needs: list[str]) -> dict:
    """The guide's rule, as data."""
    mesh_needs = [n for n in needs if n in MESH_NEEDS]
    recommendation = "istio" if mesh_needs else "gateway-api"
    if mesh_needs:
        reason = "you need " + ", ".join(NEEDS[n][0] for n in mesh_needs) + ", which only Istio provides"
    else:
        reason = "none of your needs requires mTLS, traffic shifting or circuit breaking"
    notes = []
    if not mesh_needs and "tracing" in needs:
        notes.append("tracing works without Istio through manual instrumentation")
    if not mesh_needs and "multi-tenant" in needs:
        notes.append("NetworkPolicies isolate tenants; Istio adds mTLS identity on top")
    return {
        "recommendation": recommendation,
        "reason": reason,
        "needs": [
            {"need": n, "requirement": NEEDS[n][0], "gatewayApi": NEEDS[n][1], "istio": NEEDS[n][2]}
            for n in needs
        ],
        "notes": notes,
        "rule": "Use Gateway API alone unless you need mTLS between services, traffic shifting, "
        "or circuit breaking. Istio adds operational complexity and resource overhead.",
    }


def cluster_facts(crd_names: list[str], istiod: list[dict], pod_count: int | None, namespace: str | None) -> dict:
    """What the cluster has, from the reads `read_facts` made; the control planes in the
    shape `version` gives them."""
    from kubectl_mesh.versions import control_planes

    istio_crds = any(name.endswith(".istio.io") for name in crd_names)
    gateway_crds = sorted(n for n in crd_names if n.endswith("." + GATEWAY_API_GROUP))
    planes = control_planes(istiod)
    facts = {
        "istioInstalled": bool(istiod) and istio_crds,
        "istioCrds": istio_crds,
        "controlPlanes": planes,
        "istioVersions": sorted({p["version"] for p in planes if p["version"]}),
        "gatewayApiInstalled": bool(gateway_crds),
        "gatewayApiCrds": gateway_crds,
    }
    if pod_count is not None:
        facts["sidecarCost"] = {
            "namespace": namespace,
            "pods": pod_count,
            "memoryMB": pod_count * SIDECAR_MEMORY_MB,
            "latencyPerHopMs": HOP_LATENCY_MS,
        }
    return facts


def read_facts(runner, namespace: str | None) -> dict:
    """Three small reads: CRD names, istiod Deployments, the namespace's pods."""
    names_out = runner.kubectl("get", "customresourcedefinitions.apiextensions.k8s.io", "-o", "name", timeout=15)
    crd_names = [line.split("/", 1)[-1].strip() for line in names_out.splitlines() if line.strip()]
    istiod = runner.kubectl_json("get", "deployments.apps", "-A", "-l", "app=istiod", timeout=15).get("items", [])
    pod_count = None
    if namespace:
        pods = runner.kubectl_json("get", "pods", "-n", namespace, timeout=15).get("items", [])
        pod_count = sum(1 for p in pods if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed"))
        if not pods:  # no pods: does the namespace exist at all?
            try:
                runner.kubectl("get", "namespaces", namespace, "-o", "name", timeout=15)
            except errors.NotFound:
                raise errors.NotFound(f'namespace "{namespace}" not found') from None
            except errors.Forbidden:
                pass
    return cluster_facts(crd_names, istiod, pod_count, namespace)


def build_report(decision: dict, facts: dict | None, offline_reason: str | None) -> Report:
    report = Report(title=f"Recommendation: {decision['recommendation']} ({decision['reason']})")
    report.text.append(f"Rule: {decision['rule']}")
    if decision["needs"]:
        report.text.append("")
        width = max(len(n["requirement"]) for n in decision["needs"])
        report.text.append(f"{'Requirement':<{width}}  {'Gateway API + NetworkPolicy':<28}  Istio")
        for row in decision["needs"]:
            report.text.append(f"{row['requirement']:<{width}}  {row['gatewayApi']:<28}  {row['istio']}")
    for note in decision["notes"]:
        report.text.append(f"Note: {note}")
    report.data["advice"] = decision
    if facts is None:
        report.add(Check("cluster", "cluster", "cluster", SKIP,
                         f"cluster not consulted: {offline_reason}"))
        report.data["cluster"] = None
        report.summary = f"advice: {decision['recommendation']} (offline)"
        return report
    report.data["cluster"] = facts
    wants_istio = decision["recommendation"] == "istio"
    if facts["istioInstalled"]:
        live = [p for p in facts["controlPlanes"] if not p["ready"].startswith("0/")]
        version = ", ".join(facts["istioVersions"]) or "unknown version"
        report.add(Check("istio-installed", "cluster", "istiod", PASS if live else WARN,
                         f"Istio is installed ({version}; istiod {len(live)}/{len(facts['controlPlanes'])} ready)",
                         "" if live else "istiod is not ready: kubectl get pods -n istio-system -l app=istiod"))
    else:
        report.add(Check("istio-installed", "cluster", "istiod", WARN if wants_istio else PASS,
                         "Istio is not installed on this cluster",
                         "Istio is an optional platform service: ask the platform team to deploy it"
                         if wants_istio else ""))
    report.add(Check("gateway-api", "cluster", GATEWAY_API_GROUP,
                     PASS if facts["gatewayApiInstalled"] else WARN,
                     "Gateway API CRDs are installed" if facts["gatewayApiInstalled"]
                     else "Gateway API CRDs are not installed",
                     "" if facts["gatewayApiInstalled"] else
                     "install them: https://gateway-api.sigs.k8s.io/guides/#installing-gateway-api"))
    cost = facts.get("sidecarCost")
    if cost:
        report.add(Check("sidecar-cost", "cost", f"namespace/{cost['namespace']}", PASS,
                         f"sidecars in {cost['namespace']}: {english.count(cost['pods'], 'pod')} "
                         f"x ~{SIDECAR_MEMORY_MB} MB = "
                         f"~{cost['memoryMB']} MB memory, ~{HOP_LATENCY_MS} ms added per hop"))
    report.summary = f"advice: {decision['recommendation']}"
    return report


@mesh_command("advise", examples=[
    ("kubectl mesh advise my-app --need mtls,canary", "the guide's rule for these needs; what my-app's sidecars cost"),
    ("kubectl mesh advise --need path-routing --offline", "no cluster: Gateway API alone is enough here"),
    ("kubectl mesh advise my-app --need circuit-breaking -o json", ".advice.recommendation, .cluster.istioInstalled"),
])
@click.option("--need", "needs", metavar="LIST",
              help="Comma-separated needs: " + ", ".join(NEEDS) + ".")
@click.option("--offline", is_flag=True, help="Answer from --need only; do not consult the cluster.")
@click.argument("ns", metavar="[NAMESPACE]", required=False, shell_complete=complete_namespaces)
def command(settings, needs, offline, ns):
    """Decide between Gateway API + NetworkPolicy and Istio, as the guide's table does.

    With a reachable cluster it also reports whether Istio and the Gateway API
    CRDs are installed and what sidecars would cost for NAMESPACE (or -n).
    """
    decision = decide(parse_needs(needs))
    namespace = settings.resolve_namespace(ns, required=False)
    if offline:
        return build_report(decision, None, "--offline")
    runner = settings.runner()
    try:
        facts = read_facts(runner, namespace)
    except (errors.EnvironmentProblem, errors.ToolFailed) as exc:
        # The advice stands without a cluster; say why it was not consulted.
        return build_report(decision, None, exc.message)
    return build_report(decision, facts, None)

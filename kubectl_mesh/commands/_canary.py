"""What the canary commands share: the running canary's roles and weights, the ready-pod
check before a subset gets traffic (the guide's "503 errors during canary rollout"), titles."""

from __future__ import annotations

from kubectl_mesh import english, shapes, traffic
from kubectl_mesh.commands import _service
from kubectl_mesh.mesh import format_labels, name_of
from kubectl_mesh.report import FAIL, PASS, SKIP, WARN, Check, Report, gate
from kubectl_mesh.text import command as shell


def check_pods(report: Report, target, role: str, subset: dict, weight: int, force: bool) -> dict:
    """A subset given traffic must select at least one ready pod (the guide's 503 row)."""
    pods = traffic.subset_pods(target.snapshot, target.service, subset["labels"])
    counts = traffic.pod_counts(pods)
    selector = {**traffic.service_selector(target.service), **subset["labels"]}
    subject = f"subset/{subset['name']}"
    label_text = format_labels(subset["labels"])
    where = f"{role} subset {subset['name']} ({label_text})"
    if not traffic.service_selector(target.service):
        report.add(Check(f"{role}-pods", "pods", subject, WARN,
                         f"{where}: service {target.name} has no selector; its pods cannot be checked",
                         "make sure the endpoints carry the subset's labels"))
    elif counts["ready"] > 0:
        report.add(Check(f"{role}-pods", "pods", subject, PASS,
                         f"{where}: {counts['ready']}/{english.count(counts['total'], 'pod')} ready"))
    elif weight == 0:
        report.add(Check(f"{role}-pods", "pods", subject, SKIP,
                         f"{where}: {counts['ready']}/{english.count(counts['total'], 'pod')} ready "
                         "(gets no traffic)"))
    else:
        gate(report, force, f"{role}-pods", "pods", subject,
             f"{where} selects no ready pod: {format_labels(selector)} matched "
             f"{english.count(counts['total'], 'pod')}, {counts['ready']} ready; routing {weight}% to it would "
             "fail with 503",
             "verify pod labels match the DestinationRule subset selectors: "
             + shell("kubectl", "get", "pods", "-n", target.namespace, "-l", format_labels(selector), "--show-labels"),
             {"subset": subset["name"], "labels": subset["labels"], "selector": selector})
    return counts


def load_roles(report: Report, target, force: bool):
    """The running canary: (vs, roles, current weights, subsets by role), or None with a failed check."""
    _service.guard_single(report, target, "VirtualService", force,
                          "Istio uses only one VirtualService per host for sidecars")
    vs = target.virtual_service
    roles = traffic.canary_roles(vs, target.fqdn)
    if vs is None or roles is None:
        report.add(Check("canary-found", "canary", f"service/{target.name}", FAIL,
                         f"no canary for service {target.name} in {target.namespace}: "
                         + ("no VirtualService routes it" if vs is None else
                            f"virtualservice/{name_of(vs)} does not split it between a stable and a canary subset"),
                         "start one: " + shell("kubectl", "mesh", "canary", target.name, "--stable", "v1", "--canary",
                                               "v2", "--weight", "10", "-n", target.namespace)))
        report.data["canary"] = shapes.canary(target.snapshot, target.service)
        return None
    index = traffic.catch_all_index(vs)
    current = {}
    if index is not None:
        current = traffic.route_weights(vs["spec"]["http"][index], target.fqdn, target.namespace)
    weights = {role: current.get(roles[role], 0) for role in ("stable", "canary")}
    chosen = {}
    for role in ("stable", "canary"):
        subset = traffic.subset_named(target.rules, roles[role])
        chosen[role] = {"name": roles[role], "labels": traffic.subset_labels(subset) if subset else None}
    return vs, roles, weights, chosen


def _version_text(entry: dict) -> str:
    labels = entry.get("labels")
    shown = ",".join(str(v) for v in labels.values()) if labels else "?"
    return shown if entry["name"] in ("stable", "canary") else f"{shown} (subset {entry['name']})"


def title(target, chosen, weights) -> str:
    return (f"Canary for service {target.name} in {target.namespace}: "
            f"stable {_version_text(chosen['stable'])} {weights['stable']}%, "
            f"canary {_version_text(chosen['canary'])} {weights['canary']}%")

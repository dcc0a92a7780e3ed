"""Is a canary's traffic going where pods can take it? Checks over the `canary` shape.

Each subset the catch-all route gives weight must be defined by the host's
DestinationRules and select a ready pod; otherwise its share of the
requests fails with 503 (the guide's "503 errors during canary rollout").
Used by `verify` (so one command gates a runbook step) and `canary status`.
"""

from __future__ import annotations

from kubectl_mesh import english
from kubectl_mesh.mesh import format_labels
from kubectl_mesh.report import FAIL, PASS, WARN, Check

CATEGORY = "canary"


def checks(canary: dict) -> list[Check]:
    service, namespace = canary["service"], canary["namespace"]
    by_name = {s["name"]: s for s in canary["subsets"]}
    found = []
    for name, weight in canary["weights"].items():
        if not name:
            continue
        subject = f"subset/{name}"
        where = f"service {service}: subset {name}"
        entry = by_name.get(name)
        if entry is None:
            found.append(Check(
                "canary-subset-defined", CATEGORY, subject, FAIL if weight else WARN,
                f"{where} ({weight}%) is defined by no DestinationRule for {canary['host']}"
                + ("; its requests fail with 503" if weight else ""),
                f"define the subset (kubectl mesh canary {service} --stable VERSION --canary VERSION --weight N "
                f"-n {namespace}), or move its weight elsewhere "
                f"(kubectl mesh canary rollback {service} -n {namespace})",
                {"service": service, "subset": name, "weight": weight}))
        elif weight and entry["pods"]["ready"] == 0:
            found.append(Check(
                "canary-subset-pods", CATEGORY, subject, FAIL,
                f"{where} receives {weight}% but selects no ready pod ({format_labels(entry['labels'])}, "
                f"{english.count(entry['pods']['total'], 'pod')}): its requests fail with 503",
                f"check the pods: kubectl get pods -n {namespace} -l {format_labels(entry['labels'])} --show-labels; "
                f"or send the traffic back: kubectl mesh canary rollback {service} -n {namespace}",
                {"service": service, "subset": name, "weight": weight}))
        elif weight:
            found.append(Check(
                "canary-subset-pods", CATEGORY, subject, PASS,
                f"{where} receives {weight}%: {entry['pods']['ready']}/{english.count(entry['pods']['total'], 'pod')} "
                "ready"))
    return found

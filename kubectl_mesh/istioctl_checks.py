"""istioctl's view of a workload, as checks.

`istioctl x describe pod` and `istioctl proxy-config routes` run for ONE pod
of each workload (pods of one template share their proxy configuration), a
bounded number at a time. istioctl missing gives one warning, not a crash.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from kubectl_mesh import english, errors, inventory
from kubectl_mesh.report import FAIL, PASS, WARN, Check

CATEGORY = "istioctl"
# describe warning code -> check result; the parser gives each warning line a code.
WARNING_RESULTS = {
    "not-in-mesh": FAIL,
    "proxy-not-ready": FAIL,
    "subset-without-destination-rule": FAIL,
    "unknown-subset": FAIL,
    "pod-matches-no-subset": WARN,
    "no-destination-matches": WARN,
}
WARNING_HINTS = {
    "not-in-mesh": "enable injection and restart the workload: kubectl mesh enable NAMESPACE",
    "proxy-not-ready": "kubectl logs POD -n NAMESPACE -c istio-proxy",
    "subset-without-destination-rule": "create the DestinationRule subsets before routing to them "
    "(kubectl mesh canary creates both, in that order)",
    "unknown-subset": "add the subset to the DestinationRule or fix the route (kubectl mesh diagnose)",
    "pod-matches-no-subset": "check the pod's labels against the DestinationRule subsets",
    "no-destination-matches": "check the VirtualService routes against the pod's subsets",
}


@dataclass(frozen=True)
class Target:
    workload: str
    pod: str


def pick_pods(snapshot, namespace: str) -> list[Target]:
    """One pod per workload: ready and meshed first, any meshed pod otherwise."""
    targets = []
    for group in inventory.by_workload(inventory.namespace_pods(snapshot, namespace)):
        meshed = group.meshed
        if not meshed:
            continue
        best = next((p for p in meshed if p.ready), meshed[0])
        targets.append(Target(str(group.ref), best.name))
    return targets


def describe_args(pod: str, namespace: str) -> list[str]:
    return ["x", "describe", "pod", pod, "-n", namespace]


def routes_args(pod: str, namespace: str) -> list[str]:
    return ["proxy-config", "routes", pod, "-n", namespace]


def checks_from_describe(target: Target, parsed: dict, namespace: str) -> list[Check]:
    checks = []
    for warning in parsed.get("warnings", []):
        code = warning.get("code", "other")
        hint = WARNING_HINTS.get(code, "").replace("NAMESPACE", namespace).replace("POD", target.pod)
        checks.append(Check(f"istioctl-describe-{code}", CATEGORY, target.workload,
                            WARNING_RESULTS.get(code, WARN),
                            f"{target.workload} (pod {target.pod}): {warning.get('message', '')}", hint))
    if not checks:
        effective = (parsed.get("effectivePeerAuthentication") or {}).get("workloadMtlsMode")
        detail = f"; workload mTLS {effective}" if effective else ""
        checks.append(Check("istioctl-describe", CATEGORY, target.workload, PASS,
                            f"{target.workload}: istioctl x describe pod {target.pod} reports no warnings{detail}"))
    return checks


def checks_from_routes(target: Target, rows: list[dict]) -> list[Check]:
    routed = [r for r in rows if r.get("virtualService")]
    if not rows:
        return [Check("istioctl-routes", CATEGORY, target.workload, WARN,
                      f"{target.workload}: proxy of {target.pod} has no routes",
                      "the proxy may not have received config from istiod: istioctl proxy-status")]
    return [Check("istioctl-routes", CATEGORY, target.workload, PASS,
                  f"{target.workload}: {english.count(len(rows), 'route')} in the proxy, {len(routed)} from "
                  "VirtualServices")]


# istioctl calls run at once by default. Measured on a quiet 2-core machine with an
# istioctl taking 0.3 s a call (benchmarks/verify_parallel.py, 50 workloads x 4 pods):
# 4 at a time is 13x the guide's loop, 8 is 19x, 12 is 20x, 16 is 22-24x. The calls mostly wait
# (on the API server, on a proxy's admin port), so more calls than cores pay; beyond 16
# the istioctl processes' own start-up CPU is the bound on 2 cores, and the API server
# sees a burst of several requests per call.
DEFAULT_PARALLEL = 16


def _call(runner, namespace: str, target: Target, what: str):
    """One istioctl call for a target: ("describe"|"routes", its parsed output or the error)."""
    from kubectl_mesh.istioctl_parse import parse_describe, parse_routes

    try:
        if what == "describe":
            return parse_describe(runner.istioctl(*describe_args(target.pod, namespace)))
        return parse_routes(runner.istioctl(*routes_args(target.pod, namespace)), carry_name=False)
    except errors.ToolMissing:
        raise
    except errors.MeshError as exc:  # a Forbidden too: _checks tells them apart
        return exc


def _checks(target: Target, namespace: str, described, routes) -> list[Check]:
    for outcome in (described, routes):
        if isinstance(outcome, errors.Forbidden):
            # istioctl needs more than a namespace's rights (istio-system, port-forward): a skip
            # that names the permission, not a warning about the workload.
            from kubectl_mesh.access import Denied, parse_forbidden, skipped

            denied = parse_forbidden(outcome.message) or Denied("get", "pods", namespace)
            return [skipped("istioctl-failed", CATEGORY, target.workload,
                            f"{target.workload}: istioctl checks skipped for pod {target.pod}: istioctl was "
                            f"refused (needs {denied.permission})", denied)]
    for outcome in (described, routes):
        if isinstance(outcome, errors.MeshError):
            return [Check("istioctl-failed", CATEGORY, target.workload, WARN,
                          f"{target.workload}: istioctl failed for pod {target.pod}: {outcome.message}",
                          "run it by hand with -v to see the whole output")]
    return checks_from_describe(target, described, namespace) + checks_from_routes(target, routes)


def run(runner, namespace: str, targets: list[Target], *, parallel: int = DEFAULT_PARALLEL) -> list[Check]:
    """describe and routes for every target, `parallel` istioctl calls at a time (the two
    calls of one target are independent, so they too run side by side)."""
    if not targets:
        return []
    calls = [(target, what) for target in targets for what in ("describe", "routes")]
    try:
        with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
            outcomes = list(pool.map(lambda call: _call(runner, namespace, *call), calls))
    except errors.ToolMissing as exc:
        return [Check("istioctl-present", CATEGORY, "istioctl", WARN,
                      "istioctl not found: skipped describe and routes checks", exc.message)]
    checks = []
    for i, target in enumerate(targets):
        checks += _checks(target, namespace, outcomes[2 * i], outcomes[2 * i + 1])
    return checks

"""Fixes that can work for pods without a sidecar, as commands to copy (quoted word by word).

A pod created before its namespace was labelled gets the proxy when its
workload restarts; a pod that opted out (sidecar.istio.io/inject=false)
would be recreated without one, so its fix is removing the opt-out; a pod on
the host network is never injected at all.
"""

from __future__ import annotations

from kubectl_mesh import inventory, mesh, text


def restart_hint(ref, namespace: str) -> str:
    if ref.restartable:
        return f"{text.command('kubectl', 'rollout', 'restart', str(ref), '-n', namespace)} (or: " \
               f"{text.command('kubectl', 'mesh', 'enable', namespace)})"
    if ref.kind == "Pod":
        return ("the pod has no controller: delete and recreate it "
                f"({text.command('kubectl', 'delete', 'pod', ref.name, '-n', namespace)})")
    return f"recreate the pods of {ref.kind} {ref.name} so the injector can add the proxy"


def opt_out_hint(group: inventory.WorkloadState, namespace: str) -> str:
    """For pods that opted out of injection: what can give them a sidecar (removing the
    opt-out), not a restart, which would recreate them without one again."""
    pod = next((p.pod for p in group.pods if p.opted_out), group.pods[0].pod)
    ref = group.ref
    if mesh.pod_spec(pod).get("hostNetwork"):
        return (f"{ref} runs on the host network, where Istio never injects: move it off the host network, or "
                "exempt its port from STRICT with a workload PeerAuthentication (portLevelMtls PERMISSIVE)")
    where = "labels" if mesh.INJECT_OPT in mesh.labels_of(pod) else "annotations"
    if not ref.restartable:
        return (f"{ref} opts out of injection ({mesh.INJECT_OPT}=false in its {where}): recreate it without "
                "the opt-out")
    path = f"/spec/template/metadata/{where}/{mesh.INJECT_OPT.replace('/', '~1')}"
    patch = '[{"op": "remove", "path": "' + path + '"}]'
    fix = text.command("kubectl", "patch", str(ref), "-n", namespace, "--type", "json", "-p", patch)
    return f"remove the opt-out ({mesh.INJECT_OPT}=false in its pod template's {where}), which rolls it out " \
           f"with a sidecar: {fix}"

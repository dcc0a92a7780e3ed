"""`sidecar-resources`: the guide's fix for "high latency after mesh enablement".

    kubectl mesh sidecar-resources deploy/NAME --cpu 200m --memory 256Mi [--cpu-limit 1 --memory-limit 1Gi]

Sets the sidecar.istio.io/proxyCPU, proxyMemory, proxyCPULimit and
proxyMemoryLimit annotations on the pod template of a Deployment,
StatefulSet or DaemonSet (Istio's injector turns them into the proxy's
requests and limits), with a JSON merge patch that carries the
resourceVersion read, so a concurrent change makes it conflict instead of
being overwritten. The template change rolls the workload; the command waits
for the rollout (--wait, the default) and checks that the new pods' proxies
carry the values.
"""

from __future__ import annotations

import click

from kubectl_mesh import english, errors, merge, mesh, shapes, text, validate
from kubectl_mesh.apply import rollout
from kubectl_mesh.apply.plan import execute
from kubectl_mesh.apply.writer import ObjectRef, Writer
from kubectl_mesh.cluster_names import complete_workloads
from kubectl_mesh.command import mesh_command, progress
from kubectl_mesh.report import APPLIED, FAIL, PASS, SKIP, UNCHANGED, Check, Report, gate
from kubectl_mesh.snapshot import WorkloadRef, read_cluster
from kubectl_mesh.text import command as shell

# annotation -> (resources section, resource)
RESOURCE_OF = {
    merge.PROXY_CPU: ("requests", "cpu"),
    merge.PROXY_MEMORY: ("requests", "memory"),
    merge.PROXY_CPU_LIMIT: ("limits", "cpu"),
    merge.PROXY_MEMORY_LIMIT: ("limits", "memory"),
}


def wanted_annotations(cpu, memory, cpu_limit, memory_limit) -> dict[str, str]:
    """The annotations to set, validated: quantities, request <= limit (exit 2 otherwise)."""
    values = {
        merge.PROXY_CPU: validate.quantity(cpu, "--cpu"),
        merge.PROXY_MEMORY: validate.quantity(memory, "--memory"),
    }
    if cpu_limit is not None:
        values[merge.PROXY_CPU_LIMIT] = validate.quantity(cpu_limit, "--cpu-limit")
    if memory_limit is not None:
        values[merge.PROXY_MEMORY_LIMIT] = validate.quantity(memory_limit, "--memory-limit")
    check_request_limit(values)
    return values


def check_request_limit(values: dict[str, str], given: dict[str, str] | None = None) -> None:
    """Kubernetes rejects a pod whose request exceeds its limit; so do we, before writing."""
    for request, limit, what in ((merge.PROXY_CPU, merge.PROXY_CPU_LIMIT, "CPU"),
                                 (merge.PROXY_MEMORY, merge.PROXY_MEMORY_LIMIT, "memory")):
        if request in values and limit in values:
            try:
                validate.quantity_at_most(values[request], values[limit], what)
            except errors.UsageError as exc:
                if given is not None and limit not in given:
                    raise errors.UsageError(
                        f"{exc.message} (the limit is the workload's {limit} annotation; "
                        f"raise it with --{what.lower()}-limit)") from None
                raise


def proxy_matches(pod: dict, values: dict[str, str]) -> bool:
    """Does the pod's istio-proxy carry these requests and limits?"""
    container = mesh.sidecar_container(mesh.pod_spec(pod))
    if container is None:
        return False
    resources = container.get("resources") or {}
    for annotation, value in values.items():
        section, resource = RESOURCE_OF[annotation]
        actual = (resources.get(section) or {}).get(resource)
        if actual is None or validate.parse_quantity(str(actual)) != validate.parse_quantity(value):
            return False
    return True


@mesh_command("sidecar-resources", examples=[
    ("kubectl mesh sidecar-resources deploy/checkout --cpu 200m --memory 256Mi -n shop",
     "the guide's fix for high latency after mesh enablement"),
    ("kubectl mesh sidecar-resources sts/db --cpu 500m --memory 512Mi --memory-limit 1Gi -n shop",
     "requests and a limit, on a StatefulSet"),
    ("kubectl mesh sidecar-resources deploy/checkout --cpu 1 --memory 1Gi -n shop --dry-run",
     "the annotations it would set, as a diff"),
])
@click.argument("workload", metavar="WORKLOAD", shell_complete=complete_workloads)
@click.option("--kind", metavar="KIND", help="deployment, statefulset or daemonset, when WORKLOAD is a bare name.")
@click.option("--cpu", required=True, metavar="QUANTITY", help="Proxy CPU request, e.g. 200m.")
@click.option("--memory", required=True, metavar="QUANTITY", help="Proxy memory request, e.g. 256Mi.")
@click.option("--cpu-limit", metavar="QUANTITY", help="Proxy CPU limit, e.g. 1.")
@click.option("--memory-limit", metavar="QUANTITY", help="Proxy memory limit, e.g. 1Gi.")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait for the rollout to finish.")
@click.option("--force", is_flag=True, help="Set the annotations even on a workload outside the mesh.")
def command(settings, workload, kind, cpu, memory, cpu_limit, memory_limit, wait, force):
    """Set the sidecar proxy's CPU and memory on WORKLOAD (deploy/NAME, sts/NAME, ds/NAME).

    The guide's fix for high latency after mesh enablement: the values go to
    the pod template's sidecar.istio.io/proxy* annotations, and the workload
    rolls out with them.
    """
    kind_name, name = validate.workload_ref(workload, kind)
    values = wanted_annotations(cpu, memory, cpu_limit, memory_limit)
    runner = settings.runner()
    namespace = settings.resolve_namespace(None, runner)
    snapshot = read_cluster(runner, namespace=namespace, kinds=("Namespace", "Pod", kind_name, "ReplicaSet"),
                            istio=False)
    obj = snapshot.get(kind_name, namespace, name)
    ref = WorkloadRef(kind_name, namespace, name)
    if obj is None:
        raise errors.NotFound(f"{ref} not found in namespace {namespace}")
    current = mesh.template_meta(obj).get("annotations") or {}
    check_request_limit({**{k: v for k, v in current.items() if k in RESOURCE_OF and _parses(v)}, **values},
                        given=values)

    report = Report(title=f"Sidecar proxy resources for {ref} in {namespace}")
    previous = {k: current[k] for k in RESOURCE_OF if k in current}
    report.data["workload"] = shapes.workload_of(snapshot, obj)
    report.data["sidecarResources"] = {"annotations": previous, "previous": previous}
    report.data["requested"] = {"sidecarResources": {"annotations": values}}
    pods = [p for p in snapshot.pods_of(obj) if not mesh.pod_terminating(p)]
    meshed = [p for p in pods if mesh.has_sidecar(p)]
    namespace_obj = snapshot.namespace(namespace)
    template = {"kind": "Pod", "metadata": mesh.template_meta(obj), "spec": mesh.pod_spec(obj)}
    if meshed:
        report.add(Check("meshed", "sidecars", str(ref), PASS,
                         f"{english.of_total(len(meshed), len(pods), 'pod', 'has')} istio-proxy"))
    elif not istio_installed(runner, namespace):
        raise errors.IstioMissing(f"{ref} would be rolled for annotations no injector reads")
    elif mesh.expects_sidecar(template, namespace_obj):
        report.add(Check("meshed", "sidecars", str(ref), PASS,
                         f"{ref} has no sidecar yet; its next pods get one, with these resources"))
    else:
        # Rolling the workload would change nothing a proxy reads: refused, not done for nothing.
        gate(report, force, "meshed", "sidecars", str(ref),
             f"{ref} has no sidecar and its pods get none (not in the mesh): the annotations would take effect "
             "only once it has one, and the workload would roll for nothing",
             f"enable injection first: {text.command('kubectl', 'mesh', 'enable', namespace)}; "
             "or --force to set them now")
        if report.refused:
            return report

    writer = Writer(runner, progress=progress)
    described = ", ".join(f"{k.split('/', 1)[1]}={v}" for k, v in values.items())
    object_ref = ObjectRef(kind_name, namespace, name)
    annotate = writer.patching(object_ref, lambda current: merge.annotations_patch(current, values), obj,
                               reason=f"pod template annotations {described}", action="annotate")
    landed = execute(report, [annotate], runner=runner)
    step = report.plan[-1] if report.plan else None
    if step is not None and step.status in (APPLIED, UNCHANGED) and not settings.dry_run:
        report.data["sidecarResources"]["annotations"] = {**previous, **values}  # as the workload now has them
    if not landed or settings.dry_run:
        return report
    if not wait:
        if step.status == APPLIED:
            report.notes.append("not waited for (--no-wait): "
                                + shell("kubectl", "rollout", "status", str(ref), "-n", namespace))
        return report
    results = rollout.wait(runner, namespace, [ref], progress)
    for result in results:
        if result.ok:
            report.add(Check("rollout", "rollout", str(ref), PASS, result.message))
        else:
            report.add(Check("rollout", "rollout", str(ref), FAIL, result.message,
                             f"{shell('kubectl', 'rollout', 'status', str(ref), '-n', namespace)}; "
                             "run this command again to keep waiting"))
            if isinstance(result.error, errors.TimedOut):
                report.error = errors.TimedOut(
                    f"rollout not finished within --timeout {settings.timeout:g}s: {ref}; "
                    "run the same command again to keep waiting")
            return report
    verify(report, runner, obj, ref, values, step.status == UNCHANGED)
    return report


def istio_installed(runner, namespace: str) -> bool:
    """Does the cluster know Istio's kinds? Asked only when no pod of the workload has a
    sidecar to tell; a user who may not ask gets the benefit of the doubt."""
    try:
        runner.kubectl("get", "peerauthentications.security.istio.io", "-n", namespace, "-o", "name")
    except errors.NotFound as exc:
        return "resource type" not in exc.message and "could not find" not in exc.message
    except errors.Forbidden:
        return True
    return True


def _parses(value) -> bool:
    try:
        validate.parse_quantity(str(value))
    except errors.UsageError:
        return False
    return True


def verify(report: Report, runner, obj: dict, ref: WorkloadRef, values: dict, unchanged: bool) -> None:
    """The rolled-out pods' proxies carry the values (one read of the workload's pods)."""
    selector = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    if not selector:
        return
    listed = runner.kubectl_json("get", "pods", "-n", ref.namespace, "-l", mesh.format_labels(selector))
    pods = [p for p in listed.get("items") or []
            if not mesh.pod_terminating(p) and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
    meshed = [p for p in pods if mesh.has_sidecar(p)]
    if not meshed:
        report.add(Check("proxy-resources", "rollout", str(ref), SKIP,
                         f"{ref} has no pod with istio-proxy to check"))
        return
    wrong = [mesh.name_of(p) for p in meshed if not proxy_matches(p, values)]
    if wrong:
        report.add(Check("proxy-resources", "rollout", str(ref), FAIL,
                         f"{english.of_total(len(wrong), len(meshed), 'proxy')} of {ref} "
                         f"{english.agree(len(wrong), 'does')} not carry the new resources: "
                         f"{', '.join(wrong[:10])}",
                         "is the injector running, and does the namespace's injection template honour "
                         "sidecar.istio.io/proxy* annotations? kubectl get pods -n "
                         f"{ref.namespace} -o yaml"))
    else:
        report.add(Check("proxy-resources", "rollout", str(ref), PASS,
                         f"{'the one proxy' if len(meshed) == 1 else f'all {len(meshed)} proxies'} of {ref} "
                         f"{english.agree(len(meshed), 'carries')} the new resources"
                         + (" (already so)" if unchanged else "")))

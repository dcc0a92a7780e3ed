"""`describe` and `routes` take a workload (deploy/NAME, sts/NAME, ds/NAME) or -l SELECTOR for
a pod, as istioctl does, through the real kubectl against the test API server: one ready pod
is picked, named in the text and the JSON, and handed to istioctl; bad references are clear
errors with kubectl's exit codes."""

from __future__ import annotations

import json
import time

from tests.e2e.manifests import documents, namespace, workload

APP = documents(
    namespace("my-app"),
    workload("web", "my-app", pod_labels={"app": "web", "version": "v1"}),
    workload("db", "my-app", kind="StatefulSet", replicas=2),
)
NS = ("-n", "my-app")


def _pods(kubectl, selector):
    out = json.loads(kubectl("get", "pods", *NS, "-l", selector, "-o", "json").stdout)
    return {p["metadata"]["name"]: all(c.get("ready") for c in p["status"].get("containerStatuses") or [])
            for p in out["items"]}


def _recreate_unready(e2e, kubectl, pod):
    """Delete a StatefulSet pod while new pods take a minute to get ready: it comes back, not ready."""
    e2e.cluster.ready_after = 60
    kubectl("delete", "pod", pod, *NS, "--wait=false")
    deadline = time.monotonic() + 30
    while _pods(kubectl, "app=db").get(pod) is not False:
        assert time.monotonic() < deadline, f"{pod} did not come back unready"
        time.sleep(0.2)


def _istioctl_pods(e2e) -> list[str]:
    return [call[3] if call[:2] == ["x", "describe"] else call[2] for call in e2e.istioctl_calls()]


def test_a_workload_stands_for_one_ready_pod_named_in_text_and_json(e2e, kubectl, mesh):
    e2e.cluster.load(APP)
    _recreate_unready(e2e, kubectl, "db-0")  # db-0 sorts first but is not ready: db-1 is the one to look at
    assert _pods(kubectl, "app=db") == {"db-0": False, "db-1": True}

    text = mesh("describe", "sts/db", *NS)
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith("pod db-1, one of the 2 pods of statefulset/db (they share their proxy "
                                  "configuration)\n\nPod: db-1\n")
    doc = json.loads(mesh("describe", "statefulset/db", *NS, "-o", "json").stdout)
    assert doc["pod"] == {"name": "db-1", "namespace": "my-app"}
    assert doc["workload"] == {"kind": "StatefulSet", "name": "db", "namespace": "my-app", "ref": "statefulset/db"}
    assert "selector" not in doc

    (web,) = _pods(kubectl, "app=web")
    routes = mesh("routes", "deploy/web", *NS)
    assert routes.returncode == 0, routes.stderr
    assert routes.stdout.startswith(f"pod {web}, the one pod of deployment/web\n")
    assert "✓ deployment/web: " in routes.stdout
    doc = json.loads(mesh("routes", "deployment/web", *NS, "-o", "json").stdout)
    assert doc["pod"]["name"] == web and doc["workload"]["ref"] == "deployment/web"
    assert _istioctl_pods(e2e) == ["db-1", "db-1", web, web]
    assert all(call[-2:] == ["-n", "my-app"] for call in e2e.istioctl_calls())


def test_a_selector_stands_for_one_ready_pod_it_selects(e2e, kubectl, mesh):
    e2e.cluster.load(APP)
    _recreate_unready(e2e, kubectl, "db-0")
    text = mesh("describe", "-l", "app=db", *NS)
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith("pod db-1, one of the 2 pods -l app=db selects\n")
    doc = json.loads(mesh("routes", "--selector", "app in (db)", *NS, "-o", "json").stdout)
    assert doc["pod"] == {"name": "db-1", "namespace": "my-app"} and doc["selector"] == "app in (db)"
    assert "workload" not in doc
    assert _istioctl_pods(e2e) == ["db-1", "db-1"]


def test_when_no_pod_is_ready_the_one_picked_says_so(e2e, kubectl, mesh):
    e2e.cluster.load(APP)
    _recreate_unready(e2e, kubectl, "db-0")
    _recreate_unready(e2e, kubectl, "db-1")
    text = mesh("describe", "sts/db", *NS)
    assert text.stdout.startswith("pod db-0, one of the 2 pods of statefulset/db (they share their proxy "
                                  "configuration); none of them is ready\n"), text.stdout


def test_bad_references_are_clear_errors_with_kubectls_exit_codes(e2e, kubectl, mesh):
    e2e.cluster.load(APP)
    cases = [
        (("describe", "deploy/nope"), 1, 'error: deployment "nope" not found in namespace "my-app"'),
        (("routes", "ds/nope"), 1, 'error: daemonset "nope" not found in namespace "my-app"'),
        (("describe", "-l", "app=nothing"), 1, "error: no running pod of -l app=nothing in namespace my-app"),
        (("routes", "job/db"), 2, 'error: invalid workload kind "job": use deploy/NAME, sts/NAME or ds/NAME'),
        (("describe", "deploy/web", "-l", "app=web"), 2, "error: give a pod (or deploy/NAME) or -l SELECTOR, "
                                                         "not both"),
        (("routes", "-l", "app=(web"), 2, 'error: invalid label selector "app=(web"'),
        (("describe",), 2, "error: missing POD: give a pod, a workload (deploy/NAME) or -l SELECTOR"),
    ]
    for args, code, message in cases:
        result = mesh(*args, *NS)
        assert (result.returncode, result.stdout) == (code, ""), (args, result.returncode, result.stdout)
        assert result.stderr.startswith(message), (args, result.stderr)
    assert e2e.istioctl_calls() == []  # nothing ran istioctl on a pod that was not found

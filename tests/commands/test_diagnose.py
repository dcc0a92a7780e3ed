"""diagnose at the process boundary: the one batched kubectl call, -o json field by
field, exit codes for --fail-on in every output mode, and -f touching no cluster."""

from __future__ import annotations

import io
import json
import sys

import pytest

from tests.helpers import (
    ISTIO_KINDS,
    ROOT_PA,
    calls_made,
    deployment,
    deployment_with_pods,
    kube_list,
    namespace,
    namespace_read,
    pod,
    register_namespace,
)

NS = "my-app"
# The batched reads of diagnose and status, written out: Nodes are read too so that
# subsets selecting on topology labels match pods through their node. One namespace's read
# leaves out the Namespace kind (listing namespaces is cluster-scoped): it is read by name.
KINDS = ("namespaces,pods,services,deployments.apps,statefulsets.apps,daemonsets.apps,replicasets.apps,nodes,"
         + ISTIO_KINDS)
KINDS_NS = KINDS.removeprefix("namespaces,")
READ_NS = ["kubectl", "get", KINDS_NS, "-n", NS, "-o", "json"]
READ_NAMESPACE = ["kubectl", *namespace_read(NS)]
READ_ALL = ["kubectl", "get", KINDS, "-A", "-o", "json"]
ENABLED = namespace(NS, {"istio-injection": "enabled"})
STRICT = {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
          "metadata": {"name": "strict-mtls", "namespace": NS}, "spec": {"mtls": {"mode": "STRICT"}}}
LOW = {"sidecar.istio.io/proxyCPU": "10m"}


# Istio's mesh and injector ConfigMaps, read after the snapshot.
READ_CM = ["kubectl", "get", "configmaps", "-n", "istio-system", "-o", "json"]


def register(fp, objects, *, read=READ_NS, root=True, prefix=(), configmaps=()):
    scoped = read != READ_ALL
    fp.register([read[0], *prefix, *read[1:]],
                stdout=kube_list(*[o for o in objects if not scoped or o.get("kind") != "Namespace"]))
    if scoped:
        register_namespace(fp, objects, NS, prefix)
    if root:
        fp.register(["kubectl", *prefix, *ROOT_PA], stdout=kube_list())
    fp.register([READ_CM[0], *prefix, *READ_CM[1:]], stdout=kube_list(*configmaps))


def warning_only():
    return [ENABLED, deployment("web", NS, template_annotations=LOW)]


def error_and_warning():
    return [namespace(NS), STRICT, *deployment_with_pods("web"),
            namespace("checkout", {"istio-injection": "enabled"}),
            deployment("api", "checkout", template_annotations=LOW)]


def test_one_batched_read_of_the_namespace_and_the_root_policies(fp, mesh_cli):
    register(fp, [ENABLED, *deployment_with_pods("web", sidecar="container")])
    result = mesh_cli("diagnose", NS, "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert calls_made(fp) == [READ_NS, READ_NAMESPACE, ["kubectl", *ROOT_PA], READ_CM]
    doc = result.json()
    assert doc == {
        "schemaVersion": "v1", "command": "diagnose", "success": True, "refused": False, "refusedBy": [],
        "dryRun": False, "checks": [], "plan": [],
        "counts": {"error": 0, "warning": 0, "info": 0, "suppressed": 0}, "failOn": "error",
        "source": {"type": "cluster", "context": None, "namespace": NS, "objects": 5}, "suppressed": [],
    }


def test_context_and_kubeconfig_are_passed_on(fp, mesh_cli):
    register(fp, [ENABLED], prefix=("--kubeconfig", "/tmp/kc", "--context", "prod"))
    result = mesh_cli("diagnose", "-n", NS, "--context", "prod", "--kubeconfig", "/tmp/kc")
    assert result.exit_code == 0, result.stderr
    assert len(fp.calls) == 4  # the namespace's kinds, its Namespace, the root policies, Istio's ConfigMaps


def test_without_namespace_the_contexts_namespace_is_used(fp, mesh_cli):
    fp.register(["kubectl", "config", "view", "--minify", "-o", "jsonpath={..namespace}"], stdout=NS)
    register(fp, [ENABLED])
    assert mesh_cli("diagnose").exit_code == 0
    assert calls_made(fp)[1] == READ_NS


def test_all_namespaces_reads_once(fp, mesh_cli):
    register(fp, error_and_warning(), read=READ_ALL, root=False)
    result = mesh_cli("diagnose", "-A", "-o", "json")
    assert calls_made(fp) == [READ_ALL, READ_CM]
    assert {c["subject"] for c in result.json()["checks"]} == {
        "Deployment my-app/web", "Namespace my-app", "Deployment checkout/api"}


def test_a_namespace_read_reports_only_that_namespace(fp, mesh_cli):
    # Namespaces are cluster-scoped: a namespace read returns all of them
    busted = namespace("busted", {"istio-injection": "enabled", "istio.io/rev": "canary"})
    register(fp, [*error_and_warning()[:-2], namespace("other"), busted])
    result = mesh_cli("diagnose", NS, "-o", "json")
    assert {c["subject"] for c in result.json()["checks"]} == {"Deployment my-app/web", "Namespace my-app"}


def test_json_finding_field_by_field(fp, mesh_cli):
    register(fp, [namespace(NS), STRICT, *deployment_with_pods("web")])
    doc = mesh_cli("diagnose", NS, "-o", "json").json()
    check = next(c for c in doc["checks"] if c["id"] == "MESH-MTLS-001")
    assert check["category"] == "mtls"
    assert check["subject"] == "Deployment my-app/web"
    assert check["result"] == "fail"
    assert check["level"] == "error"
    assert check["object"] == {"kind": "Deployment", "namespace": NS, "name": "web"}
    assert check["istioCode"] is None
    assert check["message"].startswith("STRICT mTLS is in force (from PeerAuthentication my-app/strict-mtls, "
                                       "namespace-wide) but deployment/web (2 pods) has no istio-proxy")
    assert not check["message"].startswith("MESH-")  # the ID is its own field
    assert check["fix"].startswith("enable injection in the destination namespace")
    assert check["hint"] == check["fix"]
    assert check["details"]["pods"] == ["web-5d9f8c7b6-p0", "web-5d9f8c7b6-p1"]
    assert "file" not in check
    info = next(c for c in doc["checks"] if c["id"] == "MESH-INJ-001")
    assert (info["result"], info["level"], info["istioCode"]) == ("skip", "info", "IST0102")
    assert info["object"] == {"kind": "Namespace", "namespace": None, "name": NS}
    assert doc["counts"] == {"error": 1, "warning": 0, "info": 1, "suppressed": 0}
    assert doc["success"] is False


def test_yaml_output_is_the_same_data(fp, mesh_cli):
    import yaml

    register(fp, warning_only())
    result = mesh_cli("diagnose", NS, "-o", "yaml")
    doc = yaml.safe_load(result.stdout)
    assert [c["id"] for c in doc["checks"]] == ["MESH-RES-001"]
    assert result.exit_code == 0


def test_text_output_lines(fp, mesh_cli):
    register(fp, [namespace(NS), STRICT, *deployment_with_pods("web")])
    result = mesh_cli("diagnose", NS)
    lines = result.stdout.splitlines()
    assert lines[0] == f"Diagnosis of namespace {NS} (6 objects read)"
    assert "- MESH-INJ-001 [IST0102] Namespace my-app: namespace my-app is not labelled" in result.stdout
    error = next(i for i, line in enumerate(lines) if line.startswith("✗ MESH-MTLS-001 Deployment my-app/web: "))
    assert lines[error + 1] == "    enable injection in the destination namespace and restart its pods: " \
                               "kubectl mesh enable my-app"
    assert lines[-1] == "1 error, 0 warnings, 1 info (failing: --fail-on error)"
    assert "callers in other namespaces (strict mTLS) are checked with -A" in result.stdout


@pytest.mark.parametrize("output", ["text", "json", "yaml"])
@pytest.mark.parametrize("objects, fail_on, code", [
    (error_and_warning, "error", 1),
    (error_and_warning, "warning", 1),
    (warning_only, "error", 0),
    (warning_only, "warning", 1),
    (lambda: [namespace(NS), *deployment_with_pods("web")], "warning", 0),  # info only
    (lambda: [ENABLED], "warning", 0),  # nothing
])
def test_fail_on_decides_the_exit_code_in_every_output_mode(fp, mesh_cli, objects, fail_on, code, output):
    register(fp, [o for o in objects() if o.get("metadata", {}).get("namespace", NS) == NS or o["kind"] == "Namespace"])
    result = mesh_cli("diagnose", NS, "--fail-on", fail_on, "-o", output)
    assert result.exit_code == code, result.stdout
    if output == "json":
        assert result.json()["success"] is (code == 0)
        assert result.json()["failOn"] == fail_on


def test_fail_on_rejects_other_levels(fp, mesh_cli):
    result = mesh_cli("diagnose", NS, "--fail-on", "info")
    assert result.exit_code == 2
    assert len(fp.calls) == 0


def test_namespace_and_all_namespaces_together_is_bad_usage(fp, mesh_cli):
    result = mesh_cli("diagnose", NS, "-A")
    assert result.exit_code == 2
    assert "not both" in result.stderr
    assert len(fp.calls) == 0


def test_missing_istio_crds_fall_back_to_core_kinds(fp, mesh_cli):
    fp.register(READ_NS, returncode=1,
                stderr='error: the server doesn\'t have a resource type "virtualservices"\n')
    core = KINDS_NS.split(",virtualservices")[0]
    fp.register(["kubectl", "get", core, "-n", NS, "-o", "json"], stdout=kube_list())
    register_namespace(fp, [ENABLED], NS)
    result = mesh_cli("diagnose", NS)
    assert result.exit_code == 0, result.stderr
    assert "Istio's CRDs are not installed" in result.stdout


def test_unreachable_cluster_is_exit_4_in_json_too(fp, mesh_cli):
    fp.register(READ_NS, returncode=1,
                stderr="The connection to the server localhost:8080 was refused - did you specify the right "
                       "host or port?\n")
    result = mesh_cli("diagnose", NS, "-o", "json")
    assert result.exit_code == 4
    assert result.json()["success"] is False


# -- offline ------------------------------------------------------------------------------------
def _write(tmp_path, name, objects):
    path = tmp_path / name
    path.write_text("---\n".join(json.dumps(o) + "\n" for o in objects))
    return path


def test_files_touch_no_cluster(fp, mesh_cli, tmp_path):
    path = _write(tmp_path, "app.yaml", error_and_warning())
    result = mesh_cli("diagnose", "-f", str(path), "-o", "json")
    assert len(fp.calls) == 0  # no kubectl, not even for the context's namespace
    assert result.exit_code == 1
    doc = result.json()
    assert doc["source"] == {"type": "manifests", "files": [str(path)], "objects": len(error_and_warning()),
                             "namespace": None}
    web = next(c for c in doc["checks"] if c["subject"] == "Deployment my-app/web")
    assert web["file"] == f"{path}:5"  # the third document


def test_files_with_a_namespace_report_only_it_and_default_it(fp, mesh_cli, tmp_path):
    unnamespaced = deployment("web", NS, template_annotations=LOW)
    del unnamespaced["metadata"]["namespace"]
    path = _write(tmp_path, "app.yaml", [ENABLED, unnamespaced, *error_and_warning()[-2:]])
    doc = mesh_cli("diagnose", "-f", str(path), "-n", NS, "-o", "json").json()
    assert [c["subject"] for c in doc["checks"]] == ["Deployment my-app/web"]
    assert doc["source"]["namespace"] == NS
    assert len(fp.calls) == 0


def test_several_files_and_stdin(fp, mesh_cli, tmp_path, monkeypatch):
    first = _write(tmp_path, "ns.json", [ENABLED])
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(deployment("web", NS, template_annotations=LOW))))
    result = mesh_cli("diagnose", "-f", str(first), "-f", "-", "-o", "json")
    doc = result.json()
    assert doc["source"]["files"] == [str(first), "<stdin>"]
    assert [c["id"] for c in doc["checks"]] == ["MESH-RES-001"]
    assert doc["checks"][0]["file"] == "<stdin>:1"
    assert result.exit_code == 0


def test_bad_yaml_is_exit_2_naming_file_and_line(fp, mesh_cli, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: [oops\n")
    result = mesh_cli("diagnose", "-f", str(path))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {path}:")
    assert "invalid YAML" in result.stderr
    json_result = mesh_cli("diagnose", "-f", str(path), "-o", "json")
    assert json_result.exit_code == 2 and json_result.json()["error"]["type"] == "UsageError"


def test_missing_file_is_exit_2(fp, mesh_cli, tmp_path):
    result = mesh_cli("diagnose", "-f", str(tmp_path / "nope"))
    assert result.exit_code == 2
    assert "no such file or directory" in result.stderr
    assert len(fp.calls) == 0


def test_bare_pods_in_manifests_are_checked_as_they_are(fp, mesh_cli, tmp_path):
    path = _write(tmp_path, "pods.yaml", [ENABLED, pod("old", NS)])
    doc = mesh_cli("diagnose", "-f", str(path), "-o", "json").json()
    assert [(c["id"], c["subject"]) for c in doc["checks"]] == [("MESH-INJ-002", "Pod my-app/old")]


def test_offline_fixes_quote_names_from_manifests(tmp_path, mesh_cli):
    """A suggested command built from a manifest's names is quoted: pasting it runs
    the plugin on that name, never `id`."""
    manifest = tmp_path / "hostile.yaml"
    manifest.write_text(json.dumps(
        {"apiVersion": "v1", "kind": "List", "items": [
            namespace("app$(id)"), deployment("api", "app$(id)"),
            ENABLED, deployment("web$(id)", NS, template_annotations=LOW)]}))
    result = mesh_cli("diagnose", "-f", str(manifest), "-o", "json")
    fixes = {c["id"]: c["hint"] for c in result.json()["checks"]}
    assert "kubectl mesh enable 'app$(id)'" in fixes["MESH-INJ-001"]
    assert "kubectl mesh sidecar-resources 'deployment/web$(id)' -n my-app --cpu 100m" in fixes["MESH-RES-001"]


# -- Istio's mesh and injector settings ----------------------------------------------------------
def injector_configmap(by_default=False, image="proxyv2", hub="docker.io/istio", tag="1.24.1", name=None):
    values = {"global": {"hub": hub, "tag": tag, "proxy": {"image": image}},
              "sidecarInjectorWebhook": {"enableNamespacesByDefault": by_default}}
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name or "istio-sidecar-injector", "namespace": "istio-system"},
            "data": {"values": json.dumps(values), "config": "policy: enabled"}}


def test_namespaces_injected_by_default_are_ist0148_not_ist0102(fp, mesh_cli):
    register(fp, [namespace(NS), *deployment_with_pods("web")], configmaps=[injector_configmap(by_default=True)])
    doc = mesh_cli("diagnose", NS, "-o", "json").json()
    codes = {(c["id"], c["istioCode"], c["subject"]) for c in doc["checks"]}
    assert ("MESH-INJ-004", "IST0148", "Namespace my-app") in codes
    assert not any(c["id"] == "MESH-INJ-001" for c in doc["checks"])
    # its pods without a proxy need a restart, though istioctl does not say so (no code)
    missing = next(c for c in doc["checks"] if c["id"] == "MESH-INJ-002")
    assert missing["istioCode"] is None and "injects namespace my-app by default" in missing["message"]


def test_unreadable_mesh_settings_are_unknown_not_an_error(fp, mesh_cli):
    for _ in range(2):
        fp.register(READ_NS, stdout=kube_list(*deployment_with_pods("web")))
        register_namespace(fp, [namespace(NS)], NS)
        fp.register(["kubectl", *ROOT_PA], stdout=kube_list())
        fp.register(READ_CM, returncode=1, stderr='Error from server (Forbidden): configmaps is forbidden: User '
                    '"dev" cannot list resource "configmaps" in API group "" in the namespace "istio-system"\n')
    result = mesh_cli("diagnose", NS, "-o", "json")
    assert result.exit_code == 0, result.stderr
    info = next(c for c in result.json()["checks"] if c["id"] == "MESH-INJ-001")
    assert "unless Istio injects unlabelled namespaces by default" in info["message"]
    text = mesh_cli("diagnose", NS)
    assert "note: cannot list configmaps in namespace istio-system (forbidden)" in text.stdout


def test_proxy_image_drift_after_an_upgrade(fp, mesh_cli):
    old = deployment_with_pods("web", sidecar="container")  # docker.io/istio/proxyv2:1.32.0
    register(fp, [ENABLED, *old], configmaps=[injector_configmap(tag="1.32.1")])
    doc = mesh_cli("diagnose", NS, "-o", "json").json()
    drift = next(c for c in doc["checks"] if c["id"] == "MESH-INJ-005")
    assert (drift["istioCode"], drift["level"], drift["subject"]) == ("IST0158", "warning", "Namespace my-app")
    assert drift["details"]["expectedImage"] == "docker.io/istio/proxyv2:1.32.1"
    assert "kubectl rollout restart deployment/web -n my-app" in drift["fix"]


def test_mesh_config_file_sets_the_export_to_default(fp, mesh_cli, tmp_path):
    mesh = tmp_path / "mesh.yaml"
    mesh.write_text("defaultServiceExportTo: ['.']\n")
    objects = [namespace(NS), namespace("web"),
               {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api", "namespace": NS},
                "spec": {"ports": [{"port": 80}]}},
               {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                "metadata": {"name": "caller", "namespace": "web"},
                "spec": {"hosts": ["x"], "http": [{"route": [{"destination": {"host": "api.my-app.svc.cluster.local"}}]}]}}]
    path = _write(tmp_path, "app.yaml", objects)
    assert mesh_cli("diagnose", "-f", str(path)).exit_code == 0
    result = mesh_cli("diagnose", "-f", str(path), "--mesh-config", str(mesh), "-o", "json")
    assert result.exit_code == 1
    assert [c["id"] for c in result.json()["checks"] if c["level"] == "error"] == ["MESH-TRF-004"]
    assert len(fp.calls) == 0


def test_mesh_config_file_errors_are_usage_errors(fp, mesh_cli, tmp_path):
    bad = tmp_path / "mesh.yaml"
    bad.write_text("- a list\n")
    result = mesh_cli("diagnose", "-f", str(bad), "--mesh-config", str(bad))
    assert result.exit_code == 2 and "not a mesh config" in result.stderr
    result = mesh_cli("diagnose", "-f", str(bad), "--mesh-config", str(tmp_path / "missing.yaml"))
    assert result.exit_code == 2 and "cannot read" in result.stderr


# -- suppression ------------------------------------------------------------------------------------
def _suppressible(tmp_path):
    objects = [namespace(NS), STRICT, *deployment_with_pods("web"), namespace("quiet"),
               deployment("api", "quiet")]
    return _write(tmp_path, "app.yaml", objects)


def test_suppress_by_code_and_object_as_istioctl_with_wildcards(fp, mesh_cli, tmp_path):
    path = str(_suppressible(tmp_path))
    doc = mesh_cli("diagnose", "-f", path, "-o", "json").json()
    assert {(c["id"], c["subject"]) for c in doc["checks"]} == {
        ("MESH-MTLS-001", "Deployment my-app/web"), ("MESH-MTLS-002", "PeerAuthentication my-app/strict-mtls"),
        ("MESH-INJ-001", "Namespace my-app"), ("MESH-INJ-001", "Namespace quiet")}
    result = mesh_cli("diagnose", "-f", path, "-o", "json", "--suppress", "IST0102=Namespace *",
                      "-S", "MESH-MTLS-001=Deployment web.my-app", "-S", "MESH-MTLS-*=PeerAuthentication *")
    doc = result.json()
    assert doc["checks"] == [] and doc["success"] is True and result.exit_code == 0
    assert doc["counts"] == {"error": 0, "warning": 0, "info": 0, "suppressed": 4}
    assert sorted((c["id"], c["subject"], c["suppressedBy"]) for c in doc["suppressed"]) == [
        ("MESH-INJ-001", "Namespace my-app", "--suppress IST0102=Namespace *"),
        ("MESH-INJ-001", "Namespace quiet", "--suppress IST0102=Namespace *"),
        ("MESH-MTLS-001", "Deployment my-app/web", "--suppress MESH-MTLS-001=Deployment web.my-app"),
        ("MESH-MTLS-002", "PeerAuthentication my-app/strict-mtls",
         "--suppress MESH-MTLS-*=PeerAuthentication *")]
    assert doc["suppressed"][0]["level"] and "message" in doc["suppressed"][0]  # listed as checks are
    # kubectl's namespace/name form too; another object is not matched
    doc = mesh_cli("diagnose", "-f", path, "-o", "json", "-S", "*=Deployment my-app/web",
                   "-S", "IST0102=Namespace other").json()
    assert [c["subject"] for c in doc["suppressed"]] == ["Deployment my-app/web"]
    text = mesh_cli("diagnose", "-f", path, "-S", "IST0102=Namespace *")
    assert "2 findings suppressed (--suppress, galley.istio.io/analyze-suppress); -o json lists them" in text.stdout
    assert text.stdout.rstrip().endswith("1 error, 0 warnings, 1 info, 2 suppressed (failing: --fail-on error)")
    assert len(fp.calls) == 0


def test_suppress_annotation_on_the_object(fp, mesh_cli, tmp_path):
    quiet = namespace("quiet", annotations={"galley.istio.io/analyze-suppress": "IST0108, MESH-INJ-001"})
    loud = namespace("loud", annotations={"galley.istio.io/analyze-suppress": "IST0103"})
    every = namespace("every", annotations={"galley.istio.io/analyze-suppress": "*"})
    path = _write(tmp_path, "ns.yaml", [quiet, loud, every, deployment("a", "quiet"), deployment("b", "loud"),
                                        deployment("c", "every")])
    doc = mesh_cli("diagnose", "-f", str(path), "-o", "json").json()
    assert [c["subject"] for c in doc["checks"]] == ["Namespace loud"]
    assert {c["subject"]: c["suppressedBy"] for c in doc["suppressed"]} == {
        "Namespace quiet": "annotation galley.istio.io/analyze-suppress=IST0108, MESH-INJ-001 on Namespace quiet",
        "Namespace every": "annotation galley.istio.io/analyze-suppress=* on Namespace every"}


def test_suppress_errors_and_unknown_codes(fp, mesh_cli, tmp_path):
    path = str(_suppressible(tmp_path))
    result = mesh_cli("diagnose", "-f", path, "--suppress", "IST0102")
    assert result.exit_code == 2 and "expected CODE=KIND NAME[.NAMESPACE]" in result.stderr
    result = mesh_cli("diagnose", "-f", path, "--suppress", "IST0102=a=b")
    assert result.exit_code == 2
    result = mesh_cli("diagnose", "-f", path, "--suppress", "IST9999=Namespace x", "-o", "json")
    assert result.exit_code == 1 and "warning: --suppress IST9999: no finding of diagnose has this code" \
        in result.stderr
    assert result.json()["counts"]["suppressed"] == 0


def test_suppress_online_reads_the_annotation_from_the_cluster_object(fp, mesh_cli):
    quiet = namespace(NS, annotations={"galley.istio.io/analyze-suppress": "IST0102"})
    register(fp, [quiet, *deployment_with_pods("web")])
    doc = mesh_cli("diagnose", NS, "-o", "json").json()
    assert doc["checks"] == [] and [c["id"] for c in doc["suppressed"]] == ["MESH-INJ-001"]


def test_text_output_escapes_control_characters_from_manifests_and_json_stays_exact(tmp_path, mesh_cli):
    """A name from a manifest cannot clear the screen, set the terminal's title or
    forge a line of its own; the JSON document carries it exactly."""
    hostile = "web\x1b[2J\x1b]0;pwned\x07\n✓ all good"
    manifest = tmp_path / "hostile.json"
    manifest.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        ENABLED, deployment(hostile, NS, template_annotations=LOW)]}))
    text = mesh_cli("diagnose", "-f", str(manifest)).stdout
    assert not any(c in text for c in "\x1b\x07\r") and "\n✓ all good" not in text
    assert "web\\x1b[2J\\x1b]0;pwned\\x07\\n✓ all good" in text
    doc = mesh_cli("diagnose", "-f", str(manifest), "-o", "json").json()
    assert any(c["object"]["name"] == hostile for c in doc["checks"])

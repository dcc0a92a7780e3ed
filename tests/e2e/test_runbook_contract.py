"""The runbook contract through the real kubectl against the test API server: every command's
JSON follows the published schema, a canary that finishes, `version` against the server's
control plane, help and errors as kubectl-family tools give them, text on any terminal."""

from __future__ import annotations

import json

import pytest

from tests.e2e import conftest

APP = """
apiVersion: v1
kind: Namespace
metadata: {name: my-app, labels: {istio-injection: enabled}}
---
apiVersion: v1
kind: Service
metadata: {name: my-app, namespace: my-app}
spec:
  selector: {app: my-app}
  ports: [{name: http, port: 80}]
""" + "".join(f"""---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: my-app-{v}, namespace: my-app}}
spec:
  replicas: {n}
  selector: {{matchLabels: {{app: my-app, version: {v}}}}}
  template:
    metadata: {{labels: {{app: my-app, version: {v}}}}}
    spec: {{containers: [{{name: app, image: "my-app:{v}"}}]}}
""" for v, n in (("v1", 2), ("v2", 1), ("v3", 1)))
NS = ("-n", "my-app")
JSON = ("-o", "json")

# Every command that prints a document (completion prints a script).
COMMANDS = {"advise", "enable", "disable", "verify", "mtls", "canary", "canary promote", "canary rollback",
            "canary finish", "canary status", "circuit-breaker", "circuit-breaker remove", "circuit-breaker status",
            "sidecar-resources", "diagnose", "status", "describe", "routes", "version", ""}


def _doc(result, codes=(0,)):
    assert result.returncode in codes, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return json.loads(result.stdout)


def _clean(diagnosis) -> bool:
    return not diagnosis["checks"] and all(diagnosis["counts"][level] == 0 for level in ("error", "warning", "info"))


def _weights(kubectl):
    vs = json.loads(kubectl("get", "virtualservices.networking.istio.io", "my-app", *NS, "-o", "json").stdout)
    route = next(r for r in vs["spec"]["http"] if not r.get("match"))
    return {d["destination"]["subset"]: d["weight"] for d in route["route"]}


def test_every_commands_json_follows_the_published_schema(e2e, kubectl, mesh):
    """The e2e `mesh` fixture validates every -o json document; this scenario runs each command once."""
    e2e.cluster.load(APP, inject=False)
    start = len(conftest.VALIDATED)
    _doc(mesh("advise", "my-app", "--need", "mtls,canary", *JSON))
    _doc(mesh("enable", "my-app", "--no-istioctl", *JSON))
    _doc(mesh("verify", "my-app", *JSON))
    _doc(mesh("verify", "-A", "--no-istioctl", *JSON))
    _doc(mesh("mtls", "my-app", "permissive", *JSON))
    _doc(mesh("mtls", "my-app", "strict", *JSON))
    _doc(mesh("mtls", "my-app", "status", *JSON))
    _doc(mesh("canary", "my-app", "--stable", "v1", "--canary", "v2", "--weight", "10", *NS, *JSON))
    _doc(mesh("canary", "promote", "my-app", "--to", "50", *NS, *JSON))
    _doc(mesh("canary", "rollback", "my-app", *NS, *JSON))
    _doc(mesh("canary", "promote", "my-app", "--full", *NS, *JSON))
    _doc(mesh("canary", "finish", "my-app", *NS, *JSON))
    _doc(mesh("canary", "status", "my-app", *NS, *JSON))
    _doc(mesh("circuit-breaker", "my-app", *NS, *JSON))
    _doc(mesh("circuit-breaker", "status", "my-app", *NS, *JSON))
    _doc(mesh("circuit-breaker", "remove", "my-app", *NS, *JSON))
    _doc(mesh("sidecar-resources", "deploy/my-app-v3", "--cpu", "200m", "--memory", "256Mi", *NS, *JSON))
    _doc(mesh("diagnose", "my-app", *JSON), codes=(0, 1))
    assert mesh("status", "-A", "-o", "yaml").returncode == 0
    _doc(mesh("status", "my-app", *JSON))
    _doc(mesh("describe", "deploy/my-app-v2", *NS, *JSON))
    _doc(mesh("routes", "-l", "app=my-app,version=v2", *NS, *JSON))
    _doc(mesh("version", *JSON))
    _doc(mesh("enabel", *JSON), codes=(2,))
    _doc(mesh("disable", "my-app", *JSON), codes=(3,))  # refused: STRICT applies
    _doc(mesh("canary", "promote", "my-app", "--to", "50", *NS, *JSON), codes=(1,))  # finished: no canary now
    assert set(conftest.VALIDATED[start:]) == COMMANDS


def test_the_schema_scenario_runs_every_command_the_cli_has():
    """COMMANDS follows the CLI: a new command or subcommand fails here until the scenario above
    runs it. `canary run` needs Prometheus and traffic: tests/e2e/test_canary_run.py validates it."""
    import click

    from kubectl_mesh.cli import COMMANDS as NAMES
    from kubectl_mesh.cli import cli

    ctx = click.Context(cli, info_name="kubectl mesh")
    paths = {""}
    for name in NAMES:
        command = cli.get_command(ctx, name)
        paths.add(name)
        if isinstance(command, click.Group):
            paths |= {f"{name} {sub}" for sub in command.list_commands(ctx)
                      if not command.get_command(ctx, sub).hidden}
    assert paths - {"completion", "canary run"} == COMMANDS


def test_canary_to_50_twice_is_one_change_finish_and_the_next_release_leaves_diagnose_clean(e2e, kubectl, mesh):
    e2e.cluster.load(APP)
    _doc(mesh("canary", "my-app", "--stable", "v1", "--canary", "v2", "--weight", "10", *NS, *JSON))
    writes = len(e2e.cluster.requests.writes())
    first = _doc(mesh("canary", "promote", "my-app", "--to", "50", *NS, *JSON))
    assert _weights(kubectl) == {"stable": 50, "canary": 50}
    again = _doc(mesh("canary", "promote", "my-app", "--to", "50", *NS, *JSON))
    assert [s["status"] for s in first["plan"]] == ["applied"]
    assert [s["status"] for s in again["plan"]] == ["unchanged"]
    assert len(e2e.cluster.requests.writes()) == writes + 1  # one change
    _doc(mesh("canary", "promote", "my-app", "--full", *NS, *JSON))
    assert _doc(mesh("verify", "my-app", *JSON))["success"] is True

    finished = _doc(mesh("canary", "finish", "my-app", *NS, *JSON))
    assert [(s["action"], s["status"]) for s in finished["plan"]] == [
        ("subsets", "applied"), ("route", "applied"), ("subsets", "applied")]
    assert finished["canary"]["stable"]["labels"] == {"version": "v2"} and finished["canary"]["canary"] is None
    rule = json.loads(kubectl("get", "destinationrules.networking.istio.io", "my-app", *NS, "-o", "json").stdout)
    assert rule["spec"]["subsets"] == [{"name": "stable", "labels": {"version": "v2"}}]
    assert _weights(kubectl) == {"stable": 100}
    assert _clean(_doc(mesh("diagnose", "my-app", *JSON)))
    assert _doc(mesh("canary", "finish", "my-app", *NS, *JSON))["plan"] == []  # again: nothing to do

    nxt = _doc(mesh("canary", "my-app", "--stable", "v2", "--canary", "v3", "--weight", "10", *NS, *JSON))
    assert nxt["canary"]["stable"]["subset"] == "stable" and nxt["canary"]["canary"]["subset"] == "canary"
    assert _weights(kubectl) == {"stable": 90, "canary": 10}
    diagnosis = _doc(mesh("diagnose", "my-app", *JSON))
    assert _clean(diagnosis), diagnosis["checks"]


def test_a_request_never_goes_to_a_subset_without_ready_pods_during_finish(e2e, kubectl, mesh):
    """After each of finish's writes, every subset the route gives weight selects a ready pod."""
    e2e.cluster.load(APP)
    _doc(mesh("canary", "my-app", "--stable", "v1", "--canary", "v2", "--weight", "100", *NS, *JSON))
    states = []

    def record(cluster):
        rule = cluster.get("destinationrules", "my-app", "my-app")
        vs = cluster.get("virtualservices", "my-app", "my-app")
        labels = {s["name"]: s["labels"] for s in rule["spec"].get("subsets", [])}
        route = next(r for r in vs["spec"]["http"] if not r.get("match"))
        states.append({d["destination"]["subset"]: labels.get(d["destination"]["subset"])
                       for d in route["route"] if d.get("weight", 100) > 0})

    for _ in range(3):
        e2e.cluster.on_next_write("destinationrules", record)
        e2e.cluster.on_next_write("virtualservices", record)
    _doc(mesh("canary", "finish", "my-app", *NS, *JSON))
    record(e2e.cluster)
    assert states, "no write observed"
    for routed in states:  # before each write, and at the end
        assert routed and all(labels == {"version": "v2"} for labels in routed.values()), states


def test_version_shows_the_test_servers_control_plane_and_data_plane(e2e, kubectl, mesh):
    from tests.cluster.injection import ISTIO_VERSION

    e2e.cluster.load(APP)
    legacy = """
apiVersion: v1
kind: Pod
metadata: {name: legacy, namespace: my-app, labels: {app: legacy}}
spec:
  containers:
  - {name: app, image: "legacy:1"}
  - {name: istio-proxy, image: "docker.io/istio/proxyv2:1.31.2"}
"""
    e2e.cluster.load(legacy, inject=False)
    doc = _doc(mesh("version", *JSON))["version"]
    (plane,) = doc["controlPlanes"]
    assert (plane["namespace"], plane["name"], plane["revision"], plane["version"]) == (
        "istio-system", "istiod", "default", ISTIO_VERSION)
    assert doc["cluster"] == "v1.32.0" and doc["kubectl"].startswith("v1.")
    assert {p["version"]: p["proxies"] for p in doc["dataPlane"]} == {ISTIO_VERSION: 4, "1.31.2": 1}
    text = mesh("version")
    assert text.returncode == 0
    assert f"control plane version: {ISTIO_VERSION} (revision default, istio-system/istiod, 1/1 ready)" in text.stdout
    assert f"data plane version:    {ISTIO_VERSION} (4 proxies), 1.31.2 (1 proxy) (all namespaces)" in text.stdout
    assert "! 1 proxy runs a version no control plane runs: 1.31.2 (1 proxy)" in text.stdout


def test_no_arguments_help_and_an_unknown_command_as_kubectl_does(e2e, mesh):
    bare = mesh()
    assert bare.returncode == 0 and bare.stdout.startswith("Usage: kubectl mesh") and bare.stderr == ""
    typo = mesh("enabel", "-o", "json")
    assert typo.returncode == 2
    assert json.loads(typo.stdout)["error"]["message"].startswith('unknown command "enabel" for "kubectl mesh"; '
                                                                  'did you mean "enable"?')
    for args, command, message in [
        (("enabel",), "", 'unknown command "enabel" for "kubectl mesh"'),
        (("canary", "--weight", "x", "my-app"), "canary", "Missing option '--stable'"),
        (("canary", "my-app", "--stable", "v1", "--canary", "v2", "--weight", "x"), "canary",
         'invalid weight "x": must be an integer'),
        (("canary", "promote", "my-app", "--to", "101"), "canary promote", 'invalid weight "101"'),
        (("circuit-breaker", "my-app", "--max-connections", "x"), "circuit-breaker", 'invalid --max-connections "x"'),
        (("describe", "deploy/web", "-l", "app=web"), "describe", "give a pod (or deploy/NAME) or -l SELECTOR"),
    ]:
        usage = mesh(*args, "-o", "json")
        doc = json.loads(usage.stdout)
        assert (usage.returncode, doc["command"], doc["error"]["exitCode"]) == (2, command, 2), (args, doc)
        assert doc["error"]["message"].startswith(message) and usage.stderr.startswith(f"error: {message}"), doc
    helped = mesh("canary", "--help")
    assert "Examples:" in helped.stdout and "--weight N" in helped.stdout
    assert helped.stdout.count("-h, --help") == 1  # the group's and the main form's help are one option


def test_canary_tab_completes_services_through_kubectl(e2e, kubectl):
    e2e.cluster.load(APP)
    for group in ("canary", "circuit-breaker"):
        out = kubectl("__complete", "mesh", group, "-n", "my-app", "my").stdout
        assert "my-app" in out.splitlines(), out
    out = kubectl("__complete", "mesh", "canary", "-n", "my-app", "").stdout
    assert {"promote", "finish", "my-app"} <= {line.split("\t")[0] for line in out.splitlines()}


@pytest.mark.parametrize("env", [{"TERM": "dumb", "PYTHONIOENCODING": "ascii"},
                                 {"LANG": "C", "LC_ALL": "C", "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0"}])
def test_text_on_a_dumb_ascii_terminal(e2e, mesh, env):
    e2e.cluster.load(APP)
    result = mesh("verify", "my-app", "--no-istioctl", env=env)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "\x1b[" not in result.stdout
    result.stdout.encode("ascii")
    assert "[ok] deployment/my-app-v1: 2/2 pods have istio-proxy (container)" in result.stdout

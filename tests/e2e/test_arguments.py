"""Arguments that would act on the wrong thing, through the real kubectl: a guessed
namespace, a namespace that does not exist, a revision no control plane serves,
a workload outside the mesh."""

from __future__ import annotations

import json

import pytest

from tests.e2e.test_enable_verify import APP


def _labels(kubectl, ns="my-app"):
    return json.loads(kubectl("get", "namespace", ns, "-o", "json").stdout)["metadata"].get("labels") or {}


def test_enable_and_disable_without_a_namespace_are_usage_errors_not_default(e2e, kubectl, mesh):
    e2e.cluster.load(APP)
    for argv in (("enable",), ("disable",), ("mtls", "strict")):
        result = mesh(*argv)
        assert result.returncode == 2, (argv, result.stderr)
        assert "missing NAMESPACE" in result.stderr
    assert "istio-injection" not in _labels(kubectl, "default")
    assert mesh("enable", "").returncode == 2


@pytest.mark.parametrize("argv", [("status", "nosuch"), ("diagnose", "nosuch"), ("advise", "nosuch")])
def test_read_only_commands_on_a_namespace_that_does_not_exist_exit_1(e2e, mesh, argv):
    result = mesh(*argv)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.strip().splitlines()[-1] == 'error: namespace "nosuch" not found'


def test_read_only_commands_say_which_namespace_they_took(e2e, mesh):
    e2e.cluster.load(APP)
    result = mesh("status")
    assert result.returncode == 0
    assert result.stderr.startswith('namespace "default" (the context names none')


@pytest.mark.cluster(istio_revisions=("default", "canary"))
def test_enable_with_a_revision_no_control_plane_serves_is_refused(e2e, kubectl, mesh):
    e2e.cluster.load(APP)
    result = mesh("enable", "my-app", "--revision", "1-99", "-o", "json")
    assert result.returncode == 3, result.stderr
    check, = [c for c in json.loads(result.stdout)["checks"] if c["id"] == "revision-exists"]
    assert "it has revisions canary, default" in check["message"]
    assert "istio.io/rev" not in _labels(kubectl)  # nothing labelled, nothing restarted
    ok = mesh("enable", "my-app", "--revision", "canary", "--no-istioctl")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert _labels(kubectl)["istio.io/rev"] == "canary"
    forced = mesh("enable", "my-app", "--revision", "1-99", "--force", "--no-wait", "--restart", "none")
    assert forced.returncode == 0, forced.stdout + forced.stderr


def test_sidecar_resources_outside_the_mesh_is_refused_and_not_rolled(e2e, kubectl, mesh):
    e2e.cluster.load(APP)  # my-app is not labelled: its pods have no sidecar and get none
    before = json.loads(kubectl("get", "deployment", "web", "-n", "my-app", "-o", "json").stdout)
    result = mesh("sidecar-resources", "deploy/web", "-n", "my-app", "--cpu", "200m", "--memory", "256Mi")
    assert result.returncode == 3, result.stdout + result.stderr
    assert "roll for nothing" in result.stdout
    after = json.loads(kubectl("get", "deployment", "web", "-n", "my-app", "-o", "json").stdout)
    assert after["metadata"]["generation"] == before["metadata"]["generation"]

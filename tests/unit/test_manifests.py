"""manifests: -f FILE|DIR|- read the way kubectl apply -f reads them."""

from __future__ import annotations

import io
import json

import pytest

from kubectl_mesh import manifests, mesh
from kubectl_mesh.errors import UsageError

NS = """apiVersion: v1
kind: Namespace
metadata:
  name: shop
  labels:
    istio-injection: enabled
"""
SVC = """apiVersion: v1
kind: Service
metadata:
  name: reviews
spec:
  selector:
    app: reviews
"""


def test_multi_document_yaml_with_empty_documents_and_lines(tmp_path):
    path = tmp_path / "all.yaml"
    path.write_text("# comment only\n---\n" + NS + "---\n" + SVC + "---\n")
    loaded = manifests.load([str(path)])
    assert [o["kind"] for o in loaded.objects] == ["Namespace", "Service"]
    assert loaded.files == [str(path)]
    assert loaded.origin("Namespace", None, "shop") == f"{path}:3"
    assert loaded.origin("Service", "default", "reviews") == f"{path}:10"


def test_objects_without_namespace_get_the_given_one(tmp_path):
    (tmp_path / "svc.yaml").write_text(SVC)
    loaded = manifests.load([str(tmp_path / "svc.yaml")], namespace="shop")
    assert loaded.objects[0]["metadata"]["namespace"] == "shop"
    assert loaded.origin("Service", "shop", "reviews")


def test_list_kinds_are_unpacked(tmp_path):
    doc = {"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}},
        {"apiVersion": "v1", "kind": "ServiceList", "items": [
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "a"}}]},
    ]}
    (tmp_path / "list.json").write_text(json.dumps(doc))
    loaded = manifests.load([str(tmp_path / "list.json")])
    assert [(o["kind"], mesh.name_of(o)) for o in loaded.objects] == [("Namespace", "a"), ("Service", "s")]


def test_directories_recursively_sorted_only_manifest_files(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "deep").mkdir()
    (tmp_path / ".git").mkdir()
    (tmp_path / "a.yml").write_text(NS)
    (tmp_path / "b" / "deep" / "svc.yaml").write_text(SVC)
    (tmp_path / "b" / "README.md").write_text("# not a manifest: {")
    (tmp_path / ".git" / "x.yaml").write_text("{{{ broken")
    (tmp_path / "c.JSON").write_text(json.dumps({"apiVersion": "v1", "kind": "Namespace",
                                                 "metadata": {"name": "c"}}))
    loaded = manifests.load([str(tmp_path)])
    assert [mesh.name_of(o) for o in loaded.objects] == ["shop", "reviews", "c"]
    assert len(loaded.files) == 3


def test_stdin_yaml_and_json(tmp_path):
    loaded = manifests.load(["-"], stdin=io.StringIO(NS))
    assert loaded.files == ["<stdin>"] and mesh.name_of(loaded.objects[0]) == "shop"
    loaded = manifests.load(["-"], stdin=io.StringIO(json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}]})))
    assert mesh.name_of(loaded.objects[0]) == "x"
    assert loaded.origin("Namespace", None, "x") == "<stdin>:1"


def test_stdin_given_twice_is_refused():
    with pytest.raises(UsageError, match="more than once"):
        manifests.load(["-", "-"], stdin=io.StringIO(NS))


def test_missing_path_names_it(tmp_path):
    with pytest.raises(UsageError) as err:
        manifests.load([str(tmp_path / "nope.yaml")])
    assert err.value.message == f"{tmp_path / 'nope.yaml'}: no such file or directory"
    assert err.value.exit_code == 2


def test_empty_directory_is_bad_input(tmp_path):
    with pytest.raises(UsageError, match="no manifests"):
        manifests.load([str(tmp_path)])


def test_bad_yaml_names_file_and_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(NS + "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: [unclosed\n")
    with pytest.raises(UsageError) as err:
        manifests.load([str(path)])
    assert err.value.message.startswith(f"{path}:")
    line = int(err.value.message.split(":")[1])
    assert line >= 11  # the broken document, not the first one
    assert "invalid YAML" in err.value.message


def test_bad_json_names_file_and_line(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{\n  "kind": "List",\n  "items": [,]\n}')
    with pytest.raises(UsageError, match=r"bad.json:3: invalid JSON"):
        manifests.load([str(path)])


@pytest.mark.parametrize("text, problem", [
    ("just a string\n", "not a Kubernetes object"),
    ("kind: Service\nmetadata:\n  name: x\n", "has no apiVersion"),
    ("apiVersion: v1\nkind: Service\nmetadata: {}\n", "Service has no metadata.name"),
])
def test_documents_that_are_not_objects(tmp_path, text, problem):
    path = tmp_path / "x.yaml"
    path.write_text(NS + "---\n" + text)
    with pytest.raises(UsageError) as err:
        manifests.load([str(path)])
    assert err.value.message.startswith(f"{path}:8: ")
    assert problem in err.value.message


def test_planned_pods_from_templates_are_injected_as_the_webhook_would(tmp_path):
    workload = """---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: NSNAME}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: web:1}]}
"""
    text = (NS + workload.replace("NSNAME", "shop")
            + "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: plain}\n" + workload.replace("NSNAME", "plain")
            + workload.replace("NSNAME", "undeclared")
            + workload.replace("NSNAME", "zero").replace("replicas: 2", "replicas: 0"))
    (tmp_path / "w.yaml").write_text(text)
    snap = manifests.snapshot(manifests.load([str(tmp_path / "w.yaml")]))
    planned = {mesh.namespace_of(p): p for p in snap.pods()}
    assert set(planned) == {"shop", "plain", "undeclared"}  # none for a workload scaled to zero
    assert mesh.has_sidecar(planned["shop"]) and mesh.has_sidecar(planned["undeclared"])
    assert not mesh.has_sidecar(planned["plain"])
    assert planned["shop"][manifests.TEMPLATE_OF] == "deployment/web"
    assert str(snap.workload_of(planned["shop"])) == "deployment/web"
    assert snap.source == "manifests"


def test_workloads_whose_pods_are_in_the_manifests_get_no_planned_pod(tmp_path):
    text = """apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template: {metadata: {labels: {app: web}}, spec: {containers: [{name: web}]}}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, labels: {app: web}}
spec: {containers: [{name: web}]}
"""
    (tmp_path / "w.yaml").write_text(text)
    snap = manifests.snapshot(manifests.load([str(tmp_path / "w.yaml")]))
    assert [mesh.name_of(p) for p in snap.pods()] == ["web-1"]

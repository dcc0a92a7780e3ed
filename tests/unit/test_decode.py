"""kubectl_mesh.decode: JSON from kubectl and manifests, in full or only what the checks read."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
import yaml

from kubectl_mesh import decode, findings, manifests
from kubectl_mesh.snapshot import Snapshot, flatten

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import realistic  # noqa: E402


def kubectl_list(objects: list[dict]) -> bytes:
    """Laid out exactly as `kubectl get -A -o json` prints a List."""
    return json.dumps({"apiVersion": "v1", "items": objects, "kind": "List",
                       "metadata": {"resourceVersion": ""}}, indent=4).encode() + b"\n"


def findings_of(document) -> list[tuple]:
    snap = Snapshot(flatten(document), source="manifests")
    return [(f.id, f.level, str(f.object), f.message, f.fix, json.dumps(f.details, sort_keys=True))
            for f in findings.run(snap)]


@pytest.fixture(scope="module")
def cluster_dump(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("dump") / "cluster.json"
    realistic.write(path, 400)
    return path


def test_kubectl_layout_is_decoded_in_batches_exactly_as_json_does(cluster_dump, monkeypatch):
    monkeypatch.setattr(decode, "BLOCK", 5000)  # many batches, and items longer than a block
    with open(cluster_dump, "rb") as stream:
        assert decode.decode_file(stream) == json.loads(cluster_dump.read_bytes())


def test_only_what_the_checks_read_gives_the_same_findings(cluster_dump):
    full = json.loads(cluster_dump.read_bytes())
    with open(cluster_dump, "rb") as stream:
        narrow = decode.decode_file(stream, checks_only=True)
    pod = next(o for o in narrow["items"] if o["kind"] == "Pod")
    configmap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "istio"}, "data": {"mesh": "x: 1"}}
    assert decode.decode(kubectl_list([configmap]), checks_only=True)["items"] == [configmap]
    assert "managedFields" not in pod["metadata"] and "volumes" not in pod["spec"]
    assert findings_of(narrow) == findings_of(full)
    assert findings_of(narrow)  # the data has something to find


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "tests" / "data" / "analyze").glob("*.yaml")))
def test_same_findings_on_the_analyzer_inputs(name):
    documents = [d for d in yaml.safe_load_all((ROOT / "tests" / "data" / "analyze" / name).read_text()) if d]
    listed = {"apiVersion": "v1", "kind": "List", "items": documents}
    narrow = decode.decode(kubectl_list(documents), checks_only=True)
    assert findings_of(narrow) == findings_of(listed)


def test_spec_keys_cover_every_istio_spec_field():
    kept = set(decode.POD_SPEC_KEYS) | set(decode.OTHER_SPEC_KEYS) | {"containers", "initContainers", "template"}
    for crd in yaml.safe_load_all((ROOT / "tests" / "data" / "crds" / "crd-all.gen.yaml").read_text()):
        if not crd or crd.get("kind") != "CustomResourceDefinition":
            continue
        for version in crd["spec"]["versions"]:
            props = version["schema"]["openAPIV3Schema"]["properties"].get("spec", {}).get("properties", {})
            missing = set(props) - kept
            assert not missing, f"{crd['spec']['names']['kind']}: spec fields not kept by decode: {sorted(missing)}"


def test_other_layouts_and_shapes_are_decoded_whole():
    objects = [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "managedFields": [{"x": 1}]}}]
    compact = json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}).encode()
    assert decode.decode_file(io.BytesIO(compact)) == json.loads(compact)
    empty = kubectl_list([])
    assert decode.decode_file(io.BytesIO(empty)) == json.loads(empty)
    # not shaped as the typed decoder expects (metadata a string): decoded in full for the caller to judge
    hostile = kubectl_list([{"apiVersion": "v1", "kind": "Pod", "metadata": "oops", "spec": {"containers": 3}}])
    assert decode.decode_file(io.BytesIO(hostile), checks_only=True)["items"][0]["metadata"] == "oops"


def test_bad_json_says_where_as_json_does():
    broken = kubectl_list([{"a": 1}, {"b": 2}]).replace(b'"b": 2', b'"b": ,')
    with pytest.raises(decode.DecodeError) as caught:
        decode.decode_file(io.BytesIO(broken), checks_only=True)
    assert caught.value.lineno == 8 and caught.value.msg == "Expecting value"
    with pytest.raises(UnicodeDecodeError):
        decode.decode(b'{"a": "\xff"}')


def test_manifests_read_json_files_through_decode(tmp_path, cluster_dump):
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'{"apiVersion": "v1",\n "kind": }')
    with pytest.raises(Exception, match=r"bad.json:2: invalid JSON: Expecting value"):
        manifests.load([str(bad)])
    flow = tmp_path / "flow.yaml"  # YAML that starts like JSON
    flow.write_text("{apiVersion: v1, kind: Namespace, metadata: {name: x}}\n")
    assert manifests.load([str(flow)]).objects[0]["metadata"]["name"] == "x"
    loaded = manifests.load([str(cluster_dump)], checks_only=True)
    assert len(loaded.objects) == len(json.loads(cluster_dump.read_bytes())["items"])

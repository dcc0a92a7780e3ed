"""diagnose -f on manifests with a wrong type anywhere: a finding or one line (exit 2),
never a traceback. Property-tested: any field of real analyzer inputs replaced by a
value of another type."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubectl_mesh import findings, manifests, meshconfig
from kubectl_mesh.errors import UsageError

DATA = Path(__file__).resolve().parents[1] / "data" / "analyze"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
INPUTS = sorted(DATA.glob("*.yaml")) + sorted(EXAMPLES.rglob("*.yaml"))
WRONG = [3, -1, 2.5, True, "text", "", [], [1, "a"], {}, {"a": 1}, None, [[]], [{"x": None}]]


def _documents(path: Path) -> list:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _paths(value, prefix=()):
    """Every path into the document: dict keys and list indexes."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


def _replace(document, path, new):
    if not path:
        return new
    copied = copy.deepcopy(document)
    node = copied
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = new
    return copied


def _diagnose(tmp_path, documents) -> None:
    target = tmp_path / "input.json"
    target.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": documents}, default=str))
    try:
        loaded = manifests.load([str(target)])
    except UsageError as exc:
        assert "\n" not in exc.message and exc.message.startswith(str(target))
        return
    snap = manifests.snapshot(loaded)
    findings.run(snap, mesh_settings=meshconfig.from_snapshot(snap, None, None))


CASES = [(path, index) for path in INPUTS for index, _ in enumerate(_documents(path))]


@pytest.mark.parametrize("source,index", CASES, ids=[f"{p.name}#{i}" for p, i in CASES])
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_wrong_type_anywhere_is_a_finding_or_one_line(tmp_path, source, index, data):
    documents = _documents(source)
    target = documents[index]
    path = data.draw(st.sampled_from(list(_paths(target))))
    wrong = data.draw(st.sampled_from(WRONG))
    documents[index] = _replace(target, path, wrong)
    _diagnose(tmp_path, documents)


@pytest.mark.parametrize("item", [3, "x", None, [], [{}]])
def test_list_items_that_are_not_objects_are_one_line(tmp_path, item):
    with pytest.raises(UsageError, match=r"List item 0 is not a Kubernetes object"):
        path = tmp_path / "l.json"
        path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": [item]}))
        manifests.load([str(path)])


# -- input that would cost more than it is worth: refused in bounded time, one line ---------
BOMB = """a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
"""


def _refused(tmp_path, name, text, match):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(UsageError, match=match) as caught:
        manifests.load([str(path)])
    assert "\n" not in caught.value.message and caught.value.message.startswith(str(path))


def test_an_alias_bomb_is_refused_before_it_expands(tmp_path):
    _refused(tmp_path, "bomb.yaml", BOMB, r"YAML aliases expand to more than 100,000 nodes")


def test_a_recursive_alias_is_refused(tmp_path):
    _refused(tmp_path, "loop.yaml", "a: &a [*a]\n", r"refers to its own ancestor")


@pytest.mark.parametrize("depth", [150, 5000])
def test_yaml_nested_too_deep_is_refused(tmp_path, depth):
    _refused(tmp_path, "deep.yaml", "a: " + "[" * depth + "]" * depth + "\n",
             r"nested more than 100 levels deep|exceeded maximum nesting depth")


def test_json_nested_too_deep_is_refused(tmp_path):
    _refused(tmp_path, "deep.json", "[" * 100_000 + "]" * 100_000, r"nested more than 100 levels deep")


def test_a_file_over_the_limit_is_refused_unread(tmp_path, monkeypatch):
    monkeypatch.setattr(manifests.untrusted, "MAX_FILE_BYTES", 1000)
    _refused(tmp_path, "big.yaml", "# x\n" * 1000, r"more than the 0 MiB a manifest file may have")


def test_standard_input_over_the_limit_is_refused(monkeypatch):
    import io

    monkeypatch.setattr(manifests.untrusted, "MAX_FILE_BYTES", 100)
    with pytest.raises(UsageError, match=r"^<stdin>: "):
        manifests.load(["-"], stdin=io.StringIO("# x\n" * 100))


@pytest.mark.parametrize("special", ["/dev/zero", "/dev/null"])
def test_devices_are_not_read(special):
    with pytest.raises(UsageError, match=r"a character device, not a regular file"):
        manifests.load([special])


def test_a_fifo_is_refused_without_blocking(tmp_path):
    import os

    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    with pytest.raises(UsageError, match=r"a fifo, not a regular file"):
        manifests.load([str(fifo)])
    with pytest.raises(UsageError, match=r"a fifo, not a regular file"):
        manifests.load([str(tmp_path)])  # found while walking the directory, too


def test_a_symlink_loop_is_refused(tmp_path):
    (tmp_path / "a.yaml").symlink_to(tmp_path / "b.yaml")
    (tmp_path / "b.yaml").symlink_to(tmp_path / "a.yaml")
    with pytest.raises(UsageError, match=r"a symbolic link loop"):
        manifests.load([str(tmp_path / "a.yaml")])


def test_a_directory_reached_twice_is_refused(tmp_path):
    (tmp_path / "ns.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "up").symlink_to(tmp_path)
    with pytest.raises(UsageError, match=r"directory reached twice"):
        manifests.load([str(tmp_path)])


def test_the_same_file_twice_is_refused(tmp_path):
    path = tmp_path / "ns.yaml"
    path.write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n")
    with pytest.raises(UsageError, match=r"file reached twice"):
        manifests.load([str(path), str(tmp_path)])


@pytest.mark.parametrize("text,match", [
    ("apiVersion: v1\nkind: 3\nmetadata: {name: a}\n", r"kind must be a string, not an integer"),
    ("apiVersion: v1\nkind: Service\nmetadata: {name: 7}\n", r"metadata.name must be a string, not an integer"),
    ("apiVersion: v1\nkind: Namespace\nmetadata: {name: a, labels: [x]}\n", r"metadata.labels must be a mapping"),
    ("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\nspec: [1]\n", r"Deployment a: spec must be a mapping"),
    ("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: r}\nspec: {host: h, subsets: [1, 2]}\n",
     r"DestinationRule r: spec.subsets\[0\] must be a mapping, not an integer"),
    ("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\nspec: {hosts: a.example}\n",
     r"VirtualService v: spec.hosts must be a list, not a string"),
    ("apiVersion: v1\nkind: Service\n", r"Service has no metadata.name"),
    ("apiVersion: v1\nkind: List\nitems: 3\n", r"List.items must be a list"),
])
def test_wrong_types_are_one_line_naming_file_document_object_and_field(tmp_path, text, match):
    _refused(tmp_path, "bad.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: ok}\n---\n" + text,
             r":5: document 2: .*" + match)

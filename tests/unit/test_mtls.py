"""Effective mTLS mode: precedence, inheritance, oldest-wins, port level."""

from kubectl_mesh import mtls
from kubectl_mesh.snapshot import Snapshot


def pa(name, ns, mode=None, selector=None, ports=None, created="2026-01-01T00:00:00Z"):
    spec = {}
    if mode:
        spec["mtls"] = {"mode": mode}
    if selector:
        spec["selector"] = {"matchLabels": selector}
    if ports:
        spec["portLevelMtls"] = {str(p): {"mode": m} for p, m in ports.items()}
    return {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
            "metadata": {"name": name, "namespace": ns, "creationTimestamp": created}, "spec": spec}


def test_default_is_permissive():
    effective = mtls.namespace_mode(Snapshot([]), "my-app")
    assert (effective.mode, effective.source) == ("PERMISSIVE", "mesh default")


def test_mesh_wide_then_namespace_then_workload():
    snap = Snapshot([pa("default", "istio-system", "STRICT")])
    assert mtls.namespace_mode(snap, "my-app").mode == "STRICT"
    assert "mesh-wide" in mtls.namespace_mode(snap, "my-app").source
    snap = Snapshot([pa("default", "istio-system", "STRICT"), pa("ns", "my-app", "PERMISSIVE")])
    assert mtls.namespace_mode(snap, "my-app").mode == "PERMISSIVE"
    snap = Snapshot([pa("ns", "my-app", "PERMISSIVE"), pa("w", "my-app", "STRICT", selector={"app": "db"})])
    assert mtls.workload_mode(snap, "my-app", {"app": "db"}).mode == "STRICT"
    assert mtls.workload_mode(snap, "my-app", {"app": "web"}).mode == "PERMISSIVE"


def test_unset_inherits():
    snap = Snapshot([pa("default", "istio-system", "STRICT"), pa("ns", "my-app", "UNSET")])
    assert mtls.namespace_mode(snap, "my-app").mode == "STRICT"
    snap = Snapshot([pa("ns", "my-app", "STRICT"), pa("w", "my-app", None, selector={"app": "db"},
                                                        ports={8080: "DISABLE"})])
    effective = mtls.workload_mode(snap, "my-app", {"app": "db"})
    assert effective.mode == "STRICT"
    assert effective.ports == {8080: ("DISABLE", "PeerAuthentication my-app/w (workload)")}


def test_oldest_namespace_wide_policy_wins():
    snap = Snapshot([pa("newer", "my-app", "STRICT", created="2026-02-01T00:00:00Z"),
                     pa("older", "my-app", "PERMISSIVE", created="2026-01-01T00:00:00Z")])
    assert [p["metadata"]["name"] for p in mtls.namespace_wide_policies(snap, "my-app")] == ["older", "newer"]
    assert mtls.namespace_mode(snap, "my-app").mode == "PERMISSIVE"


def test_strict_applies_on_a_port():
    assert mtls.strict_applies(mtls.Effective("PERMISSIVE", "x", {80: ("STRICT", "y")}))
    assert not mtls.strict_applies(mtls.Effective("PERMISSIVE", "x"))

"""examples/: each set gives exactly its expected findings; the healthy one none;
all of them together give the union (each uses its own namespaces)."""

from __future__ import annotations

from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

EXPECTED = {
    "healthy": set(),
    "strict-mtls-no-sidecar": {
        ("MESH-INJ-001", "info", "Namespace inventory"),
        ("MESH-MTLS-001", "error", "Deployment inventory/inventory-api"),
    },
    "canary-503": {
        ("MESH-TRF-003", "error", "DestinationRule shop/reviews"),
    },
    "sidecar-resources-low": {
        ("MESH-RES-001", "warning", "Deployment checkout/checkout-api"),
        ("MESH-RES-002", "error", "Deployment checkout/payments-worker"),
    },
}


def _findings(mesh_cli, path):
    result = mesh_cli("diagnose", "-f", str(path), "-o", "json")
    return result, {(c["id"], c["level"], c["subject"]) for c in result.json()["checks"]}


def test_every_example_directory_is_listed():
    assert {p.name for p in EXAMPLES.iterdir() if p.is_dir()} == set(EXPECTED)
    readme = (EXAMPLES / "README.md").read_text()
    assert all(f"`{name}/`" in readme for name in EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_gives_exactly_its_findings(fp, mesh_cli, name):
    result, found = _findings(mesh_cli, EXAMPLES / name)
    assert found == EXPECTED[name]
    has_error = any(level == "error" for _, level, _ in EXPECTED[name])
    assert result.exit_code == (1 if has_error else 0)
    assert len(fp.calls) == 0


def test_all_examples_together_give_the_union(fp, mesh_cli):
    result, found = _findings(mesh_cli, EXAMPLES)
    assert found == set().union(*EXPECTED.values())
    assert result.exit_code == 1


def test_findings_point_at_their_files(fp, mesh_cli):
    result = mesh_cli("diagnose", "-f", str(EXAMPLES / "canary-503"), "-o", "json")
    (check,) = result.json()["checks"]
    assert check["file"] == f"{EXAMPLES / 'canary-503' / 'reviews.yaml'}:70"
    assert "they carry version=v1, 2.0" in check["message"]


def test_the_guide_rows_are_covered():
    from kubectl_mesh import findings

    rows = {c.guide_row for c in findings.CHECKS if c.guide_row}
    assert rows == {
        "Connection refused between services after enabling strict mTLS",
        "503 errors during canary rollout",
        "High latency after mesh enablement",
    }

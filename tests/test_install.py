"""install.sh on a copy of the repository: install, re-install, plugin discovery, uninstall."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def checkout(tmp_path_factory):
    """The repository's tracked files (and those being added), without any virtual environment."""
    target = tmp_path_factory.mktemp("clone") / "kubectl-mesh"
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def _run(args, cwd, env=None):
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=env, timeout=600)


def test_install_reinstall_discover_uninstall(checkout, tmp_path):
    prefix = tmp_path / "prefix"
    first = _run(["bash", "install.sh", "--prefix", str(prefix)], checkout)
    assert first.returncode == 0, first.stderr
    links = {p.name: p for p in (prefix / "bin").iterdir()}
    assert set(links) == {"kubectl-mesh", "kubectl_complete-mesh"}
    for name, link in links.items():
        assert os.readlink(link) == str(checkout / ".venv" / "bin" / name)
    assert f"linked {prefix}/bin/kubectl-mesh" in first.stdout
    assert f'export PATH="{prefix}/bin:$PATH"' in first.stdout  # not on PATH: says how

    env = {**os.environ, "PATH": f"{prefix}/bin{os.pathsep}{os.environ['PATH']}"}
    plugins = _run(["kubectl", "plugin", "list"], checkout, env)
    assert f"{prefix}/bin/kubectl-mesh" in plugins.stdout
    via_kubectl = _run(["kubectl", "mesh", "--help"], checkout, env)
    assert via_kubectl.returncode == 0 and "Usage: kubectl mesh" in via_kubectl.stdout
    advise = _run(["kubectl", "mesh", "advise", "--need", "mtls,canary", "-o", "json", "--offline"], checkout, env)
    assert advise.returncode == 0 and '"recommendation": "istio"' in advise.stdout

    second = _run(["bash", "install.sh", "--prefix", str(prefix)], checkout)
    assert second.returncode == 0, second.stderr
    assert "created virtual environment" not in second.stdout
    assert {p.name for p in (prefix / "bin").iterdir()} == set(links)

    (prefix / "bin" / "someone-elses-tool").write_text("#!/bin/sh\n")
    gone = _run(["bash", "install.sh", "--uninstall", "--prefix", str(prefix)], checkout)
    assert gone.returncode == 0
    assert {p.name for p in (prefix / "bin").iterdir()} == {"someone-elses-tool"}
    assert not (checkout / ".venv").exists()


def test_refuses_to_replace_a_real_file(checkout, tmp_path):
    prefix = tmp_path / "prefix"
    (prefix / "bin").mkdir(parents=True)
    (prefix / "bin" / "kubectl-mesh").write_text("#!/bin/sh\necho mine\n")
    result = _run(["bash", "install.sh", "--prefix", str(prefix)], checkout)
    assert result.returncode == 2
    assert "exists and is not a link" in result.stderr
    assert (prefix / "bin" / "kubectl-mesh").read_text() == "#!/bin/sh\necho mine\n"


def test_unknown_option(checkout):
    result = _run(["bash", "install.sh", "--frobnicate"], checkout)
    assert result.returncode == 2
    assert "unknown option: --frobnicate" in result.stderr

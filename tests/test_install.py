"""install.sh on a copy of the repository: install, re-install, plugin discovery, uninstall;
and the README's two set-up commands run verbatim, as root and as a normal user."""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# What PATH is on a fresh machine, before anyone extends it.
BARE_PATH = {"root": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
             "user": "/usr/local/bin:/usr/bin:/bin"}
# The second command runs the README's test command; here only a few tests, by pytest's own
# environment variable, as the whole suite (this file included) would run inside itself.
FEW_TESTS = "-q -p no:cacheprovider tests/commands/test_cli.py"


@pytest.fixture(scope="module")
def checkout(tmp_path_factory):
    """The repository's tracked files (and those being added), without any virtual environment."""
    return _copy_checkout(tmp_path_factory.mktemp("clone") / "kubectl-mesh")


def _run(args, cwd, env=None):
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=env, timeout=600)


def _tracked_files() -> list[str]:
    return subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                          capture_output=True, text=True, check=True).stdout.split()


def _copy_checkout(target: Path) -> Path:
    for name in _tracked_files():
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def quick_start_commands() -> list[str]:
    """The README's two set-up commands, exactly as written: the first two code blocks
    of its Quick start."""
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```\n(.*?)\n```", section, re.S)
    assert len(blocks) >= 2, "the README's Quick start has lost its two commands"
    return blocks[:2]


README = (ROOT / "README.md").read_text()


def site_packages(checkout: Path) -> Path:
    return next((checkout / ".venv" / "lib").glob("python3*/site-packages"))


def _check_quick_start(run, checkout: Path, who: str) -> None:
    install_and_diagnose, install_dev_and_test = quick_start_commands()
    first = run(install_and_diagnose)
    assert "unknown command" not in first.stderr, first.stderr
    # the examples are broken on purpose: exit 1, with the diagnosis on stdout
    assert first.returncode == 1, f"{who}: {first.stdout[-2000:]}\n{first.stderr[-3000:]}"
    assert "Diagnosis of 27 objects in 7 files; no cluster used" in first.stdout
    site = site_packages(checkout)
    assert (site / "kubectl_mesh" / "cli.py").is_file()  # copied in, not editable
    assert not list(site.glob("__editable__*"))
    assert list((site / "kubectl_mesh" / "__pycache__").glob("cli.cpython-*.pyc"))  # despite PYTHONDONTWRITEBYTECODE
    second = run(install_dev_and_test)
    assert second.returncode == 0, f"{who}: {second.stdout[-3000:]}\n{second.stderr[-3000:]}"
    assert re.search(r"\d+ passed", second.stdout)
    # --dev: editable in compat mode, a path entry and no import hook
    assert [p.read_text().strip() for p in site.glob("__editable__*.pth")] == [str(checkout)]
    assert not list(site.glob("__editable__*finder*"))


def _assignments(env: dict) -> str:
    return " ".join(shlex.quote(f"{k}={v}") for k, v in env.items())


def _fresh_env(home: Path, path: str) -> dict:
    return {"HOME": str(home), "PATH": path, "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1",
            "PYTEST_ADDOPTS": FEW_TESTS}


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (CI runs as root)")
def test_readme_set_up_commands_verbatim_as_root(tmp_path):
    """In a mount namespace of its own, /usr/local/bin empty and private: the machine's is
    neither changed nor read, and parallel runs do not meet."""
    checkout = _copy_checkout(tmp_path / "kubectl-mesh")
    empty_bin = tmp_path / "usr-local-bin"
    empty_bin.mkdir()
    home = tmp_path / "root-home"
    home.mkdir()
    if subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode != 0:
        pytest.skip("cannot make a mount namespace here")

    def run(command):
        script = (f"mount --make-rprivate / && mount --bind {empty_bin} /usr/local/bin && "
                  f"exec env -i {_assignments(_fresh_env(home, BARE_PATH['root']))} bash -c {shlex.quote(command)}")
        return _run(["unshare", "-m", "bash", "-c", script], checkout)

    _check_quick_start(run, checkout, "root")
    assert sorted(p.name for p in empty_bin.iterdir()) == ["kubectl-mesh", "kubectl_complete-mesh"]


@contextlib.contextmanager
def _throwaway_user():
    name = f"meshtest{os.getpid() % 100000}"
    created = subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/bash", name], capture_output=True,
                             text=True)
    if created.returncode != 0:
        pytest.skip(f"cannot create a user: {created.stderr.strip()}")
    try:
        yield pwd.getpwnam(name)
    finally:
        subprocess.run(["userdel", name], capture_output=True)


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runuser"), reason="needs root to create a user")
def test_readme_set_up_commands_verbatim_as_a_user_without_local_bin_on_path():
    with _throwaway_user() as user, tempfile.TemporaryDirectory(prefix="mesh-install-") as top:
        base = Path(top)
        os.chmod(base, 0o755)
        home = base / "home"
        checkout = _copy_checkout(base / "kubectl-mesh")
        home.mkdir()
        for path in [home, checkout, *checkout.rglob("*")]:
            os.lchown(path, user.pw_uid, user.pw_gid)
        assert "/.local/bin" not in BARE_PATH["user"]

        def run(command):
            env = _assignments(_fresh_env(home, BARE_PATH["user"]))
            return _run(["runuser", "-u", user.pw_name, "--", "bash", "-c",
                         f"exec env -i {env} bash -c {shlex.quote(command)}"], checkout)

        _check_quick_start(run, checkout, user.pw_name)
        assert (home / ".local" / "bin" / "kubectl-mesh").is_symlink()
        shutil.rmtree(checkout / ".venv")  # owned by the user, removed before the user is


def test_install_reinstall_discover_uninstall(checkout, tmp_path):
    prefix = tmp_path / "prefix"
    first = _run(["bash", "install.sh", "--prefix", str(prefix)], checkout)
    assert first.returncode == 0, first.stderr
    links = {p.name: p for p in (prefix / "bin").iterdir()}
    assert set(links) == {"kubectl-mesh", "kubectl_complete-mesh"}
    for name, link in links.items():
        assert os.readlink(link) == str(checkout / ".venv" / "bin" / name)
        assert "import re" not in Path(link).read_text()  # our launcher, not pip's wrapper
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

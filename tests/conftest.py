"""Fixtures shared by every tier of tests."""

from __future__ import annotations

# plumbum runs `uname -p` when first imported (the runner imports it on the first tool
# run); import it before any test's `fp` fixture fakes processes.
import plumbum.machines.local  # noqa: F401
import pytest

from tests.helpers import CliResult


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path, monkeypatch):
    """Backups and other state go to a temporary directory, never the user's."""
    monkeypatch.setenv("KUBECTL_MESH_STATE_DIR", str(tmp_path / "state"))
    # No kubeconfig of the machine's: the backups' cluster is resolved from files.
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))
    monkeypatch.delenv("NO_COLOR", raising=False)


@pytest.fixture
def fp(fp):
    """pytest-subprocess's `fp`, where a registered kubectl call may carry the one
    `--request-timeout=Ns` the runner appends (its value depends on the time left;
    tests/unit/test_runner.py checks it)."""
    register = fp.register

    def register_kubectl_call(command, *args, **kwargs):
        if (isinstance(command, list | tuple) and command and command[0] == "kubectl"
                and "config" not in command[1:4] and not isinstance(command[-1], type(fp.any()))):
            command = [*command, fp.any(max=1)]
        return register(command, *args, **kwargs)

    fp.register = register_kubectl_call
    # The permission check before writes, answered "allowed" (a test of a refusal registers
    # its own answer first).
    fp.register([*ACCESS_REVIEW[:1], fp.any(max=4), *ACCESS_REVIEW[1:]], stdin_callable=allow_all_reviews,
                occurrences=1000)
    return fp


@pytest.fixture
def mesh_cli(capsys):
    """Run `kubectl mesh ARGS` in-process (tools faked with pytest-subprocess's `fp`)."""
    from kubectl_mesh import cli

    def run(*argv: str) -> CliResult:
        code = cli.run(list(argv))
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return run


ACCESS_REVIEW = ["kubectl", "create", "-f", "-", "-o", "json", "--validate=false"]


def allow_all_reviews(stdin: bytes | str) -> dict:
    """Answer a List of SelfSubjectAccessReviews (the permission check before writes): all allowed."""
    import json

    text = stdin.decode() if isinstance(stdin, bytes) else stdin
    items = json.loads(text)["items"]
    return {"stdout": "\n".join(json.dumps({**item, "status": {"allowed": True}}) for item in items)}


"""apply/backup.py: one folder per cluster, private files, no symlink followed, one line when unusable."""

from __future__ import annotations

import os
import stat

import pytest
import yaml

from kubectl_mesh import errors
from kubectl_mesh.apply.backup import Store, resolve_cluster

DR = {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
      "metadata": {"name": "web", "namespace": "my-app", "resourceVersion": "7"}, "spec": {"host": "web"}}


def _kubeconfig(path, current, clusters):
    """clusters: {context: server}"""
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": current,
        "contexts": [{"name": c, "context": {"cluster": f"{c}-cluster", "user": "u"}} for c in clusters],
        "clusters": [{"name": f"{c}-cluster", "cluster": {"server": s}} for c, s in clusters.items()],
        "users": [{"name": "u", "user": {}}],
    }))
    return path


def test_the_context_and_server_come_from_the_kubeconfig(tmp_path, monkeypatch):
    config = _kubeconfig(tmp_path / "config", "prod", {"prod": "https://10.0.0.1:6443", "dev": "https://dev:443"})
    monkeypatch.setenv("KUBECONFIG", str(config))
    assert resolve_cluster(None, None).context == "prod"
    assert resolve_cluster(None, None).server == "https://10.0.0.1:6443"
    assert resolve_cluster("dev", None).server == "https://dev:443"
    assert resolve_cluster(None, str(config)).folder == "prod@10.0.0.1_6443"


def test_kubeconfig_files_merge_the_first_setting_wins(tmp_path, monkeypatch):
    first = _kubeconfig(tmp_path / "a", "one", {"one": "https://a:1"})
    second = _kubeconfig(tmp_path / "b", "two", {"one": "https://b:2", "two": "https://b:3"})
    monkeypatch.setenv("KUBECONFIG", f"{first}{os.pathsep}{second}")
    assert resolve_cluster(None, None).folder == "one@a_1"
    assert resolve_cluster("two", None).folder == "two@b_3"


def test_two_clusters_with_one_context_name_never_share_a_folder(tmp_path):
    a = _kubeconfig(tmp_path / "a", "prod", {"prod": "https://a.example:6443"})
    b = _kubeconfig(tmp_path / "b", "prod", {"prod": "https://b.example:6443"})
    saved_a = Store(None, str(a)).save(DR)
    saved_b = Store(None, str(b)).save(DR)
    assert saved_a.parent != saved_b.parent
    assert saved_a.parent.name == saved_b.parent.name == "my-app"


def test_restore_names_the_context_it_resolved_and_the_kubeconfig_given(tmp_path):
    config = _kubeconfig(tmp_path / "config", "prod", {"prod": "https://10.0.0.1:6443"})
    store = Store(None, str(config))
    saved = store.save(DR)
    assert store.restore_command(saved) == f"kubectl --kubeconfig {config} --context prod replace -f {saved}"
    assert yaml.safe_load(saved.read_text())["metadata"] == {"name": "web", "namespace": "my-app"}


def test_folders_are_private_and_files_0600(tmp_path):
    saved = Store("prod", None).save(DR)
    state = tmp_path / "state"
    for folder in (state, state / "backups", saved.parent.parent, saved.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600


def test_a_symlinked_folder_is_refused_not_followed(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "backups").symlink_to(elsewhere)
    with pytest.raises(errors.EnvironmentProblem, match="symbolic link") as caught:
        Store("prod", None).ready()
    assert caught.value.exit_code == 4 and list(elsewhere.iterdir()) == []


def test_a_state_dir_others_may_write_to_is_refused(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(0o777)
    with pytest.raises(errors.EnvironmentProblem, match="others may write to it"):
        Store("prod", None).ready()


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to give a directory away")
def test_a_state_dir_of_another_user_is_refused(tmp_path):
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    os.chown(state, 65534, 65534)
    with pytest.raises(errors.EnvironmentProblem, match="belongs to another user"):
        Store("prod", None).ready()


def test_an_unwritable_state_dir_is_one_line_exit_4(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("KUBECTL_MESH_STATE_DIR", str(blocker / "state"))
    with pytest.raises(errors.EnvironmentProblem) as caught:
        Store("prod", None).ready()
    assert caught.value.exit_code == 4 and "\n" not in caught.value.message
    assert caught.value.message.startswith(f"cannot keep backups in {blocker / 'state'}: ")


def test_a_planted_backup_file_is_not_written_through(tmp_path):
    store = Store("prod", None)
    store.ready()
    folder = tmp_path / "state" / "backups" / store.cluster.folder / "my-app"
    folder.mkdir(mode=0o700)
    target = tmp_path / "victim"
    target.write_text("keep me")
    from datetime import UTC, datetime

    now = datetime(2030, 1, 1, tzinfo=UTC)
    (folder / "20300101T000000.000000Z-destinationrule-web.yaml").symlink_to(target)
    with pytest.raises(errors.EnvironmentProblem):
        store.save(DR, now=now)
    assert target.read_text() == "keep me"

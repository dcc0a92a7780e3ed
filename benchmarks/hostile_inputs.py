#!/usr/bin/env python3
"""Hostile input, tried against the installed `kubectl-mesh`: each case's exit code,
wall time and peak memory (the child's own maximum resident set, from wait4).

Manifests for `diagnose -f` (alias bombs, deep nesting, devices, fifos, link
loops, wrong types, huge scalars...), arguments that must be usage errors
before any call, and a few against the local test API server (a slow server,
a hanging exec credential plugin, control characters in an annotation).
Every case must end with its expected exit code, one line on stderr at most
for a refusal, no traceback, within the time bound. Exit status 1 otherwise.

    .venv/bin/python benchmarks/hostile_inputs.py [--only SUBSTRING] [--no-cluster] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = Path(sys.executable).parent / "kubectl-mesh"
BOUND_S = 20.0  # no case may take longer than this


@dataclass
class Case:
    name: str
    argv: list[str]
    expect: int
    stdin: str | None = None  # a path to feed as standard input
    env: dict | None = None
    bound: float = BOUND_S
    needle: str = ""  # must appear in stderr (or stdout)
    forbid: str = ""  # characters that must not appear in stdout/stderr
    before: object = None  # called before the case runs (e.g. to set a fault)


def run(case: Case) -> dict:
    stdin = open(case.stdin, "rb") if case.stdin else subprocess.DEVNULL  # noqa: SIM115
    started = time.monotonic()
    process = subprocess.Popen(["kubectl-mesh", *case.argv], stdin=stdin, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env={**os.environ, **(case.env or {})},
                               start_new_session=True)
    try:
        out, err = process.communicate(timeout=case.bound + 10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
    elapsed = time.monotonic() - started
    # The child is reaped by communicate(); its peak is read from /proc while... not possible
    # after exit, so the whole run is repeated under wait4 when the first succeeded quickly.
    if stdin is not subprocess.DEVNULL:
        stdin.close()
    text = (out + err).decode("utf-8", "replace")
    return {"code": process.returncode, "seconds": elapsed, "stderr": err.decode("utf-8", "replace"),
            "text": text}


def peak_kb(case: Case) -> int:
    """Run once more under fork + wait4 for the child's own peak RSS."""
    stdin_fd = os.open(case.stdin, os.O_RDONLY) if case.stdin else os.open(os.devnull, os.O_RDONLY)
    devnull = os.open(os.devnull, os.O_WRONLY)
    pid = os.fork()
    if pid == 0:  # the child: exec the plugin with the case's input, output discarded
        os.setsid()
        os.dup2(stdin_fd, 0)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        os.execvpe("kubectl-mesh", ["kubectl-mesh", *case.argv], {**os.environ, **(case.env or {})})
    os.close(stdin_fd)
    os.close(devnull)
    deadline = time.monotonic() + case.bound + 10
    while True:
        done, _, usage = os.wait4(pid, os.WNOHANG)
        if done:
            return usage.ru_maxrss
        if time.monotonic() > deadline:
            os.killpg(pid, signal.SIGKILL)
        time.sleep(0.01)


# -- the inputs ---------------------------------------------------------------------------
BOMB = "".join(f"{chr(97 + i)}: &{chr(97 + i)} [" + ",".join([f"*{chr(96 + i)}"] * 9 if i else ['"lol"'] * 9)
               + "]\n" for i in range(9))
NS = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {istio-injection: enabled}}\n"
DR_HEAD = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: r, namespace: shop}\n"
VS_HEAD = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v, namespace: shop}\n"


def deployment(name="web", **spec) -> str:
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "shop"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "web", "image": "web:1"}]}}, **spec}}
    return json.dumps(body)


def yaml_ns() -> dict:
    import yaml

    return yaml.safe_load(NS)


def manifest_cases(tmp: Path) -> list[Case]:
    def file(name: str, text: str | bytes) -> str:
        path = tmp / name
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return str(path)

    def diagnose(path) -> list[str]:
        return ["diagnose", "-f", path]

    fifo = tmp / "fifo.yaml"
    os.mkfifo(fifo)
    sock = tmp / "socket.yaml"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(sock))
    (tmp / "loop-a.yaml").symlink_to(tmp / "loop-b.yaml")
    (tmp / "loop-b.yaml").symlink_to(tmp / "loop-a.yaml")
    tree = tmp / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "ns.yaml").write_text(NS)
    (tree / "sub" / "up").symlink_to(tree)
    sparse = tmp / "sparse.yaml"
    with open(sparse, "wb") as stream:
        stream.truncate(2 << 30)  # 2 GiB, no blocks: refused by size before any read
    deep_dir = tmp / "deep"
    here = deep_dir
    for _ in range(40):
        here = here / "d"
    here.mkdir(parents=True)
    (here / "ns.yaml").write_text(NS)
    hostile = json.loads(deployment("web$(id)"))
    hostile["spec"]["template"]["metadata"]["annotations"] = {"sidecar.istio.io/proxyCPU": "1m"}
    cases = [
        Case("YAML alias bomb (billion laughs, 9 levels)", diagnose(file("bomb.yaml", BOMB)), 2,
             needle="alias"),
        Case("YAML alias to its own ancestor", diagnose(file("recursive.yaml", "a: &a [*a]\n")), 2),
        Case("YAML merge-key alias bomb", diagnose(file("merge.yaml", "a: &a {x: 1, y: 2}\n" + "".join(
            f"k{i}: &k{i} {{<<: [{', '.join(['*a' if i == 0 else f'*k{i - 1}'] * 5)}]}}\n" for i in range(12)))), 2),
        Case("YAML nested 150 levels", diagnose(file("deep150.yaml", "a: " + "[" * 150 + "]" * 150)), 2),
        Case("YAML nested 100,000 levels", diagnose(file("deep.yaml", "a: " + "[" * 100_000 + "]" * 100_000)), 2),
        Case("JSON nested 1,000,000 levels", diagnose(file("deep.json", "[" * 1_000_000 + "]" * 1_000_000)), 2),
        Case("JSON integer of 100,000 digits", diagnose(file("bigint.json", '{"a": ' + "9" * 100_000 + "}")), 2),
        Case("YAML integer of 100,000 digits", diagnose(file("bigint.yaml", "a: " + "9" * 100_000 + "\n")), 2),
        Case("YAML python/object tag", diagnose(file("tag.yaml", "a: !!python/object/apply:os.system [id]\n")), 2),
        Case("/dev/zero", diagnose("/dev/zero"), 2),
        Case("/dev/urandom", diagnose("/dev/urandom"), 2),
        Case("a fifo with no writer", diagnose(str(fifo)), 2),
        Case("a unix socket", diagnose(str(sock)), 2),
        Case("a symbolic link loop", diagnose(str(tmp / "loop-a.yaml")), 2),
        Case("a directory reached twice (link to its parent)", diagnose(str(tree)), 2),
        Case("the same file twice", ["diagnose", "-f", str(tree / "ns.yaml"), "-f", str(tree / "ns.yaml")], 2),
        Case("a tree 40 directories deep", diagnose(str(deep_dir)), 2),
        Case("a 2 GiB (sparse) file", diagnose(str(sparse)), 2),
        Case("binary, not UTF-8", diagnose(file("binary.yaml", bytes(range(256)) * 64)), 2),
        Case("stdin from /dev/zero", ["diagnose", "-f", "-"], 2, stdin="/dev/zero"),
        Case("stdin of 64 MiB of NUL bytes", ["diagnose", "-f", "-"], 2, stdin=file("nul.bin", b"\0" * (64 << 20))),
    ]
    wrong_types = {  # name: (file, text)
        "kind as a number": ("kind.yaml", "apiVersion: v1\nkind: 3\nmetadata: {name: a}\n"),
        "name as a number": ("name.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: 3}\n"),
        "labels as a list": ("labels.yaml", NS.replace("{istio-injection: enabled}", "[a, b]")),
        "spec as a list": ("spec.json", json.dumps({**json.loads(deployment()), "spec": [{"replicas": 1}]})),
        "subsets as numbers": ("subsets.yaml", f"{DR_HEAD}spec: {{host: web, subsets: [1, 2]}}\n"),
        "hosts as a string": ("hosts.yaml", f"{VS_HEAD}spec: {{hosts: web.shop}}\n"),
        "List items that are not objects": ("items.json", '{"apiVersion":"v1","kind":"List","items":[1,"x",null]}'),
        "List.items not a list": ("items2.json", '{"apiVersion":"v1","kind":"List","items":{"a":1}}'),
        "no metadata": ("nometa.yaml", "apiVersion: v1\nkind: Service\n"),
        "a document that is a string": ("string.yaml", "just text\n"),
        "a null subset name": ("nullname.yaml", f"{DR_HEAD}spec: {{host: web, subsets: [{{name: null}}]}}\n"),
    }
    cases += [Case(name, diagnose(file(*spec)), 2) for name, spec in wrong_types.items()]
    big_map = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n" + "".join(
        f"  k{i}: v\n" for i in range(200_000))
    big_scalar = (NS + "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: shop}\n"
                  "data: {x: " + "a" * 50_000_000 + "}\n")
    escaped = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x\x1b[2J\x1b]0;pwned\x07\r✓ fine"}}
    cases += [
        Case("100,000 empty documents", diagnose(file("docs.yaml", "---\n" * 100_000)), 0),
        Case("a 50 MB scalar", diagnose(file("scalar.yaml", big_scalar)), 0),
        Case("200,000 keys in one mapping", diagnose(file("keys.yaml", big_map)), 0),
        Case("a name with $(id) (quoted in its fix)", diagnose(file("dollar.json", json.dumps(
            {"apiVersion": "v1", "kind": "List", "items": [yaml_ns(), hostile]}))), 0,
             needle="'deployment/web$(id)'"),
        Case("control characters in a manifest name (text output)", diagnose(file("esc.json", json.dumps(escaped))),
             0, forbid="\x1b\x07\r"),
    ]
    server.close()
    return cases


def argument_cases() -> list[Case]:
    ns = ["-n", "shop"]
    sidecar = ["sidecar-resources", "deploy/web", *ns]
    return [
        Case("--cpu １００m (fullwidth digits)", [*sidecar, "--cpu", "１００m", "--memory", "1Gi"], 2),
        Case("--memory 1e400", [*sidecar, "--cpu", "100m", "--memory", "1e400"], 2),
        Case("--memory 9999999999999999999999Ei", [*sidecar, "--cpu", "1", "--memory", "9999999999999999999999Ei"], 2),
        Case("--interval ٣s (Arabic-Indic digit)", ["circuit-breaker", "web", *ns, "--interval", "٣s"], 2),
        Case("--weight ٣", ["canary", "web", *ns, "--stable", "v1", "--canary", "v2", "--weight", "٣"], 2),
        Case("--timeout 1e400", ["verify", "shop", "--timeout", "1e400"], 2),
        Case("--timeout 99999999999999999999h", ["verify", "shop", "--timeout", "99999999999999999999h"], 2),
        Case("namespace with a newline", ["enable", "shop\n✓ done"], 2),
        Case("namespace with ESC (error line escaped)", ["enable", "shop\x1b[2J"], 2, forbid="\x1b"),
        Case('enable "" (empty namespace)', ["enable", ""], 2),
        Case("enable with no namespace", ["enable"], 2),
        Case('--context ""', ["verify", "shop", "--context", ""], 2),
        Case('diagnose -f "" (was: the current directory)', ["diagnose", "-f", ""], 2),
        Case("--label with a unicode key", ["canary", "web", *ns, "--stable", "v1", "--canary", "v2", "--weight", "1",
                                           "--label", "vérsion"], 2),
    ]


def cluster_cases(tmp: Path) -> tuple[list[Case], object]:
    sys.path.insert(0, str(ROOT))
    from tests.cluster import TestCluster

    cluster = TestCluster().start()
    kubeconfig = cluster.write_kubeconfig(tmp / "kubeconfig")
    env = {"KUBECONFIG": str(kubeconfig), "KUBECTL_MESH_STATE_DIR": str(tmp / "state")}
    cluster.load(NS + "---\n" + json.dumps(json.loads(deployment())))
    import yaml

    plugin = tmp / "hang-credentials"
    plugin.write_text("#!/bin/sh\nexec sleep 300\n")
    plugin.chmod(0o755)
    config = yaml.safe_load(kubeconfig.read_text())
    config["users"][0]["user"] = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": str(plugin),
                                           "interactiveMode": "Never"}}
    hanging = tmp / "kubeconfig-hanging"
    hanging.write_text(yaml.safe_dump(config))
    cases = [
        Case("state dir of another user (or not a directory)", ["mtls", "shop", "permissive", "--timeout", "10s"], 4,
             env={**env, "KUBECTL_MESH_STATE_DIR": str(_foreign_dir(tmp))}, needle="cannot keep backups"),
        Case("a hanging exec credential plugin, --timeout 3s",
             ["status", "shop", "--timeout", "3s", "--kubeconfig", str(hanging)], 4, env=env),
        Case("a slow API server (list held 600 s), --timeout 3s",
             ["verify", "shop", "--no-istioctl", "--timeout", "3s"], 4, env=env,
             needle="what was left of --timeout 3s",
             before=lambda: cluster.add_latency(600, verb="list", namespace="shop")),
    ]
    return cases, cluster


def _foreign_dir(tmp: Path) -> Path:
    """Owned by another user when this runs as root; else a path under a file."""
    if os.getuid() != 0:
        (tmp / "a-file").write_text("")
        return tmp / "a-file" / "state"
    path = tmp / "foreign"
    path.mkdir(mode=0o700)
    os.chown(path, 65534, 65534)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="")
    parser.add_argument("--no-cluster", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="three cases without a cluster: proves the script works")
    options = parser.parse_args()
    if options.smoke:
        options.no_cluster = True
    os.environ["PATH"] = f"{PLUGIN.parent}{os.pathsep}{os.environ['PATH']}"
    failures = 0
    cluster = None
    with tempfile.TemporaryDirectory() as directory:
        tmp = Path(directory)
        os.environ.setdefault("KUBECTL_MESH_STATE_DIR", str(tmp / "state"))
        os.environ["KUBECONFIG"] = str(tmp / "no-kubeconfig")
        cases = manifest_cases(tmp) + argument_cases()
        if not options.no_cluster:
            more, cluster = cluster_cases(tmp)
            cases += more
        cases = [c for c in cases if options.only in c.name]
        if options.smoke:
            cases = cases[:3]
        print(f"{'#':>3}  {'input':<58} {'exit':>4} {'want':>4} {'seconds':>8} {'peak MB':>8}  verdict")
        try:
            for number, case in enumerate(cases, 1):
                if case.before is not None:
                    case.before()
                result = run(case)
                peak = peak_kb(case) / 1024
                problems = []
                if result["code"] != case.expect:
                    problems.append(f"exit {result['code']}")
                if "Traceback" in result["text"]:
                    problems.append("traceback")
                if result["seconds"] > case.bound:
                    problems.append("too slow")
                if case.expect in (2, 3, 4) and len(result["stderr"].strip().splitlines()) > 2:
                    problems.append("more than one line")
                if case.needle and case.needle not in result["text"]:
                    problems.append(f"no {case.needle!r}")
                if case.forbid and any(c in result["text"] for c in case.forbid):
                    problems.append("raw control character")
                failures += bool(problems)
                print(f"{number:>3}  {case.name[:58]:<58} {result['code']:>4} {case.expect:>4} "
                      f"{result['seconds']:>8.2f} {peak:>8.1f}  {'ok' if not problems else ', '.join(problems)}")
        finally:
            if cluster is not None:
                cluster.clear_faults()
                cluster.stop()
    print(f"{len(cases)} hostile inputs, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

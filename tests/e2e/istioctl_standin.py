#!/usr/bin/env python3
"""A stand-in for istioctl on PATH in end-to-end tests: it replays real istioctl
output from tests/data/istioctl/ and logs each invocation.

Environment:
  ISTIOCTL_STANDIN_LOG       file that receives one JSON line per invocation
  ISTIOCTL_STANDIN_DESCRIBE  describe output to print (default: pod-canary-stable.txt);
                             its first line `Pod: NAME` is rewritten to the pod asked for
  ISTIOCTL_STANDIN_ROUTES    routes output (default: istio-gateway-http-route-prefix)
  ISTIOCTL_STANDIN_RBAC      when set, first ask the API server (`kubectl auth can-i`, with the
                             same --context/--kubeconfig) for what real istioctl needs, and fail
                             as istioctl does when it is denied: describe lists istiod's pods in
                             istio-system; proxy-config port-forwards to the pod
"""

import json
import os
import subprocess
import sys
from pathlib import Path

DATA = Path(os.environ.get("ISTIOCTL_STANDIN_DATA") or Path(__file__).resolve().parents[1] / "data" / "istioctl")


def _without_cluster_flags(argv):
    """The words of the command: istioctl's global --context/--kubeconfig (as `--context X` or
    `--context=X`, anywhere on the line) left out."""
    words, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("--context", "--kubeconfig"):
            skip = True
        elif not arg.startswith(("--context=", "--kubeconfig=")):
            words.append(arg)
    return words


def _option(argv, name):
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def _denied(argv, verb, resource, namespace):
    """None when the caller may, else istioctl's error line (as real istioctl prints the API
    server's 403)."""
    cluster = [f"--{o}={v}" for o in ("context", "kubeconfig") if (v := _option(argv, f"--{o}"))]
    who = subprocess.run(["kubectl", *cluster, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"],
                         capture_output=True, text=True).stdout.strip() or "unknown"
    allowed = subprocess.run(["kubectl", *cluster, "auth", "can-i", verb, resource, "-n", namespace],
                             capture_output=True, text=True)
    if allowed.stdout.strip() == "yes":
        return None
    group, _, sub = resource.partition("/")
    what = f'resource "{group}"' if not sub else f'resource "{group}/{sub}"'
    return f'{group} is forbidden: User "{who}" cannot {verb} {what} in API group "" in the namespace "{namespace}"'


def main(argv):
    log = os.environ.get("ISTIOCTL_STANDIN_LOG")
    if log:
        with open(log, "a") as handle:
            handle.write(json.dumps(argv) + "\n")
    words = _without_cluster_flags(argv)
    namespace = _option(words, "-n") or "default"
    if os.environ.get("ISTIOCTL_STANDIN_RBAC"):
        if words[:3] == ["x", "describe", "pod"]:
            denied = _denied(argv, "list", "pods", "istio-system")
            if denied:
                sys.stderr.write(f"Error: failed to execute command on istiod: {denied}\n")
                return 1
        elif words[:2] == ["proxy-config", "routes"] and len(words) > 2:
            pod, _, pod_ns = words[2].partition(".")
            denied = _denied(argv, "create", "pods/portforward", pod_ns or namespace)
            if denied:
                sys.stderr.write(f'Error: pods "{pod}" is forbidden: User {denied.split("User ", 1)[1]}\n')
                return 1
    if words[:3] == ["x", "describe", "pod"] and len(words) > 3:
        path = os.environ.get("ISTIOCTL_STANDIN_DESCRIBE") or DATA / "describe" / "pod-canary-stable.txt"
        lines = Path(path).read_text().splitlines(keepends=True)
        if lines and lines[0].startswith("Pod: "):
            lines[0] = f"Pod: {words[3]}\n"
        sys.stdout.write("".join(lines))
        return 0
    if words[:2] == ["proxy-config", "routes"]:
        path = os.environ.get("ISTIOCTL_STANDIN_ROUTES") or (
            DATA / "routes" / "istio-gateway-http-route-prefix" / "output.txt")
        sys.stdout.write(Path(path).read_text())
        return 0
    sys.stderr.write(f"Error: istioctl stand-in does not know: {' '.join(argv)}\n")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/env python3
"""A stand-in for istioctl on PATH in end-to-end tests: it replays real istioctl
output from tests/data/istioctl/ and logs each invocation.

Environment:
  ISTIOCTL_STANDIN_LOG       file that receives one JSON line per invocation
  ISTIOCTL_STANDIN_DESCRIBE  describe output to print (default: pod-canary-stable.txt);
                             its first line `Pod: NAME` is rewritten to the pod asked for
  ISTIOCTL_STANDIN_ROUTES    routes output (default: istio-gateway-http-route-prefix)
"""

import json
import os
import sys
from pathlib import Path

DATA = Path(os.environ.get("ISTIOCTL_STANDIN_DATA") or Path(__file__).resolve().parents[1] / "data" / "istioctl")


def main(argv):
    log = os.environ.get("ISTIOCTL_STANDIN_LOG")
    if log:
        with open(log, "a") as handle:
            handle.write(json.dumps(argv) + "\n")
    words = [a for a in argv if not a.startswith("--context") and not a.startswith("--kubeconfig")]
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

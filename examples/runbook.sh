#!/usr/bin/env bash
# The guide, as a runbook: put a namespace in the mesh, strict mTLS, a canary from
# 10% to 50% to all of the traffic with a gate at each step, a circuit breaker, and
# a final status; on any failure once the canary is live, traffic goes back to stable.
#
#   examples/runbook.sh NAMESPACE SERVICE [STABLE CANARY]     (versions default v1 v2)
#
# SOAK (seconds, default 60) is the time each step runs before its gate: watch your
# dashboards then. Every gate is one Python one-liner over `kubectl mesh ... -o json`
# at a path docs/schema/README.md documents; no jq needed.
set -Eeuo pipefail

ns="${1:?usage: runbook.sh NAMESPACE SERVICE [STABLE CANARY]}"
svc="${2:?usage: runbook.sh NAMESPACE SERVICE [STABLE CANARY]}"
stable="${3:-v1}"
canary="${4:-v2}"
soak="${SOAK:-60}"

say() { printf 'runbook: %s\n' "$*" >&2; }

# gate EXPR: true when EXPR holds for the JSON document `d` read from stdin.
gate() { python3 -c 'import json, sys; d = json.load(sys.stdin); sys.exit(0 if eval(sys.argv[1]) else 1)' "$1"; }

canary_live=0
on_failure() {
  local code=$?
  trap - ERR
  if [ "$canary_live" = 1 ]; then
    say "step failed (exit $code): sending all traffic back to $stable"
    kubectl mesh canary rollback "$svc" -n "$ns" --force >&2 || say "rollback failed too: run it by hand"
  fi
  say "stopped (exit $code)"
  exit "$code"
}
trap on_failure ERR

say "1. enable injection in $ns and restart what lacks the proxy"
kubectl mesh enable "$ns" -o json | gate 'd["success"]'

say "2. verify: every pod in the mesh"
kubectl mesh verify "$ns" -o json | gate 'd["success"] and d["namespaces"][0]["pods"]["meshed"] == d["namespaces"][0]["pods"]["total"]'

say "3. mTLS PERMISSIVE first, then STRICT"
kubectl mesh mtls "$ns" permissive -o json | gate 'd["namespaces"][0]["mtls"]["mode"] == "PERMISSIVE"'
kubectl mesh mtls "$ns" strict -o json | gate 'd["namespaces"][0]["mtls"]["mode"] == "STRICT"'

say "4. canary $canary at 10%"
canary_live=1
kubectl mesh canary "$svc" --stable "$stable" --canary "$canary" --weight 10 -n "$ns" -o json \
  | gate 'd["canary"]["canary"]["weight"] == 10'
sleep "$soak"
kubectl mesh verify "$ns" -o json | gate 'd["success"]'

say "5. canary at 50%"
kubectl mesh canary promote "$svc" --to 50 -n "$ns" -o json | gate 'd["canary"]["canary"]["weight"] == 50'
sleep "$soak"
kubectl mesh verify "$ns" -o json | gate 'd["success"]'

say "6. all traffic to $canary, then $canary becomes the stable"
kubectl mesh canary promote "$svc" --full -n "$ns" -o json | gate 'd["canary"]["canary"]["weight"] == 100'
sleep "$soak"
kubectl mesh verify "$ns" -o json | gate 'd["success"]'
kubectl mesh canary finish "$svc" -n "$ns" -o json \
  | gate "d['canary']['stable']['weight'] == 100 and d['canary']['stable']['labels']['version'] == '$canary'"
canary_live=0

say "7. circuit breaker on $svc"
kubectl mesh circuit-breaker "$svc" -n "$ns" -o json | gate 'd["circuitBreaker"]["limits"]["consecutive5xxErrors"] > 0'

say "8. status"
kubectl mesh status "$ns" -o json \
  | gate 'd["namespaces"][0]["mtls"]["mode"] == "STRICT" and d["namespaces"][0]["findings"]["error"] == 0'
kubectl mesh status "$ns"
say "done"

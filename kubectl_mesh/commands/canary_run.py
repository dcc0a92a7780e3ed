"""`canary run`: a progressive canary with metric analysis, run from a terminal or a CI job.

    kubectl mesh canary run SVC --stable v1 --canary v2 [--steps 10,25,50,100] [--interval 1m]
        [--success-rate 99] [--max-p99 500ms] [--min-requests 20] [--failure-limit 2] [--finish]
        [--prometheus NS/NAME:PORT | --prometheus-url URL] [--on-error rollback|hold] [--restart]

Each step sets the weight with the canary machinery (subsets before weights, ready pods before
traffic, conditional writes), waits one interval, measures both sides from Prometheus, and
decides (`analysis.decision`, `analysis.schedule`). Progress goes to stderr; the report (every
measurement) to stdout. The run's state lives in the VirtualService's annotation, so an
interrupted run resumes and a second runner is refused.
"""

from __future__ import annotations

import os
import signal
import socket
import time
import uuid
from dataclasses import replace

import click

from kubectl_mesh import errors, traffic
from kubectl_mesh.analysis import options, prometheus, promql, schedule
from kubectl_mesh.analysis.decision import Thresholds, decide, millis_text, percent_text
from kubectl_mesh.analysis.text import (
    TABLE_HEADER,
    Measurement,
    duration_text,
    measurement_line,
    schedule_lines,
    table_row,
    waiting_line,
)
from kubectl_mesh.cluster_names import complete_services
from kubectl_mesh.command import mesh_command, progress
from kubectl_mesh.commands import _canary_writes as writes
from kubectl_mesh.commands import _service
from kubectl_mesh.commands._canary_finish import apply_finish
from kubectl_mesh.metrics import Client, discover
from kubectl_mesh.report import FAIL, PASS, WARN, Check, Report

PROGRESS_EVERY = 15.0  # seconds between progress lines while waiting
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
Interrupted, Inconclusive, PrometheusFailed = errors.Interrupted, errors.Inconclusive, errors.PrometheusFailed


EXAMPLES = [
    ("kubectl mesh canary run reviews --stable v1 --canary v2 -n shop --finish",
     "10% -> 25% -> 50% -> 100%, one minute each, then make v2 the new stable"),
    ("kubectl mesh canary run reviews --stable v1 --canary v2 -n shop --steps 5,20,100 --interval 2m "
     "--success-rate 99.9 --max-p99 300ms --prometheus monitoring/prometheus-k8s:web",
     "a quicker, stricter schedule, Prometheus named explicitly"),
    ("kubectl mesh canary run reviews --stable v1 --canary v2 -n shop --dry-run",
     "show the schedule and the exact PromQL, change nothing"),
    ("kubectl mesh canary run reviews --stable v1 --canary v2 -n shop -o json | "
     "python3 -c 'import json,sys; print(json.load(sys.stdin)[\"run\"][\"outcome\"])'",
     "every measurement as data; the outcome for a script"),
]

EPILOG = """\b
Exit codes: 0 promoted (or already), 1 rolled back by the analysis, 2 bad input, 3 refused
(another run holds the canary, a failed run without --restart, a safety check), 4 Prometheus
or the cluster failed (rolled back unless --on-error hold), 5 inconclusive: too little
traffic to judge, stopped at the current weight, 130 interrupted (run it again to resume).
"""


def _parsed(convert, value, *args):
    try:
        return convert(value, *args)
    except ValueError as exc:
        raise errors.UsageError(str(exc)) from None


@mesh_command("run", context_settings=CONTEXT, epilog=EPILOG, examples=EXAMPLES)
@click.argument("svc", metavar="SVC", shell_complete=complete_services)
@click.option("--stable", metavar="VERSION", required=True, help="Label value of the stable pods, e.g. v1.")
@click.option("--canary", "canary_version", metavar="VERSION", required=True,
              help="Label value of the canary pods, e.g. v2.")
@click.option("--steps", default="10,25,50,100", show_default=True, metavar="W,W,...",
              help="Canary weights, rising.")
@click.option("--interval", default="1m", show_default=True, metavar="DURATION",
              help="Time at each weight before it is measured; also the query window.")
@click.option("--success-rate", default="99", show_default=True, metavar="PERCENT",
              help="Lowest canary success rate (non-5xx) that passes.")
@click.option("--max-p99", default="500ms", show_default=True, metavar="DURATION",
              help="Highest canary p99 latency that passes.")
@click.option("--min-requests", default="20", show_default=True, metavar="N",
              help="Fewer canary requests in an interval is inconclusive, never a pass.")
@click.option("--failure-limit", default="2", show_default=True, metavar="N",
              help="Failed intervals (over the run) that roll back; inconclusive ones in a row that stop.")
@click.option("--finish", is_flag=True, help="At 100%, make the canary the new stable (canary finish).")
@click.option("--prometheus", "prometheus_ref", metavar="NS/NAME:PORT",
              help="Prometheus Service, reached through the API server (default: discovered).")
@click.option("--prometheus-url", metavar="URL", help="Prometheus at a direct address instead.")
@click.option("--on-error", type=click.Choice(["rollback", "hold"]), default="rollback", show_default=True,
              help="When Prometheus fails mid-run: canary weight back to 0, or keep it.")
@click.option("--label", default="version", show_default=True, metavar="KEY",
              help="The pod label that tells the versions apart.")
@click.option("--restart", is_flag=True, help="Start at the first step, discarding a stored (or failed) run.")
@click.option("--force", is_flag=True, help="Take over a run another runner holds; proceed despite safety checks.")
def command(settings, svc, stable, canary_version, steps, interval, success_rate, max_p99, min_requests,
            failure_limit, finish, prometheus_ref, prometheus_url, on_error, label, restart, force):
    """Walk the canary up its steps, measuring it from Prometheus at each, rolling back on failure.

    Weights are set as `canary SVC --weight N` sets them. After each interval the canary's
    success rate, p99 latency and request count (Istio's standard metrics) are measured,
    beside the stable's: a pass moves to the next step, a failure holds the step (and rolls
    back at --failure-limit), too little traffic holds it (and stops, exit 5, at
    --failure-limit in a row). Progress is kept on the VirtualService: running the same
    command again resumes an interrupted run; a second runner is refused. --timeout bounds
    each step's calls to the API server and Prometheus; the schedule sets how long the run
    lasts.
    """
    plan = schedule.Plan(stable=stable, canary=canary_version, steps=_parsed(options.steps, steps),
                         interval=_parsed(options.interval, interval),
                         failure_limit=_parsed(options.whole, failure_limit, "--failure-limit", 1, 100))
    thresholds = Thresholds(success_rate=_parsed(options.success_rate, success_rate),
                            max_p99_ms=_parsed(options.max_p99_ms, max_p99),
                            min_requests=_parsed(options.whole, min_requests, "--min-requests", 0, 10**6))
    if prometheus_ref and prometheus_url:
        raise errors.UsageError("give --prometheus or --prometheus-url, not both")
    if finish and plan.steps[-1] != 100:
        raise errors.UsageError(f"--finish needs a last step of 100 (--steps {steps} ends at {plan.steps[-1]})")
    target_ref = None
    if prometheus_ref:
        target_ref = _parsed(prometheus.parse_service_ref, prometheus_ref)
    elif prometheus_url:
        target_ref = _parsed(prometheus.parse_url, prometheus_url)
    svc, label = writes.validated(svc, label, stable, canary_version)

    runner = settings.runner()
    target = _service.load(settings, runner, svc)
    run = CanaryRun(settings, runner, target, plan, thresholds, label=label, on_error=on_error, finish=finish,
                    force=force, restart=restart)
    return run.execute(target_ref)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


class CanaryRun:
    """One invocation: the checks, the schedule, the loop, and the report."""

    def __init__(self, settings, runner, target, plan, thresholds, *, label, on_error, finish, force, restart,
                 clock=time.time, sleep=time.sleep):
        self.settings, self.runner, self.target = settings, runner, target
        self.plan, self.thresholds = plan, thresholds
        self.label, self.on_error, self.finish, self.force, self.restart = label, on_error, finish, force, restart
        self.clock, self.sleep = clock, sleep
        self.me = f"{os.environ.get('USER') or 'user'}@{socket.gethostname()}:{os.getpid()}"
        self.report = Report(title=(f"Canary run for service {target.name} in {target.namespace}: "
                                    f"{plan.stable} -> {plan.canary}, steps {','.join(map(str, plan.steps))}, "
                                    f"every {duration_text(plan.interval)}"))
        self.measurements: list[Measurement] = []
        self.state: schedule.RunState | None = None
        self.client: Client | None = None
        self.queries: dict = {}
        self.outcome = "error"
        self.finished = False  # the canary became the stable (--finish, or an earlier finish)

    def _finished_already(self) -> bool:
        """A finished canary (`canary finish`, or an earlier `run --finish`) whose stable subset
        selects this run's canary version: running the run again must not start it over."""
        vs, rule = self.target.virtual_service, self.target.rule
        done = traffic.finished_roles(vs) if traffic.canary_roles(vs, self.target.fqdn) is None else None
        if done is None or rule is None:
            return False
        stable = traffic.subset_labels(traffic.subset_named(rule, done["stable"]))
        return stable.get(self.label) == self.plan.canary

    # -- the report ---------------------------------------------------------------------------
    def _done(self, outcome: str, summary: str = "") -> Report:
        self.outcome = outcome
        doc = {"service": self.target.name, "namespace": self.target.namespace, "stable": self.plan.stable,
               "canary": self.plan.canary, "steps": list(self.plan.steps), "intervalSeconds": self.plan.interval,
               "failureLimit": self.plan.failure_limit, "thresholds": self.thresholds.as_dict(),
               "outcome": outcome, "weight": writes.live_weights(self.target).get("canary"),
               "measurements": [m.as_dict() for m in self.measurements], "finished": self.finished}
        if self.client is not None:
            doc["prometheus"] = self.client.target.as_dict()
        if self.queries:
            doc["queries"] = {side: q.as_dict() for side, q in self.queries.items()}
        if self.state is not None:
            doc["state"] = self.state.as_dict()
        self.report.data["run"] = doc
        if self.measurements:
            self.report.text = [TABLE_HEADER] + [table_row(m) for m in self.measurements]
        if summary:
            self.report.summary = summary
        if self.settings.output == "text" and not self.settings.dry_run:
            for step in self.report.plan:  # the patches carry the run's state: in -o json, not in the text
                step.command = ""
        return self.report

    def _refuse(self, check_id: str, message: str, hint: str, outcome: str = "refused") -> Report:
        self.report.add(Check(check_id, "canary", f"service/{self.target.name}", FAIL, message, hint))
        self.report.refused = True
        return self._done(outcome, f"refused: {message}")

    # -- before any change -----------------------------------------------------------------------
    def execute(self, target_ref) -> Report:
        target, plan = self.target, self.plan
        if self._finished_already():
            apply_finish(self.report, self.runner, target, self.force)  # only a leftover canary subset is left
            self.finished = not self.report.failed
            return self._done("promoted", f"already finished: {plan.canary} is the stable")
        chosen = writes.roles_for(target, self.label, plan.stable, plan.canary)
        sides = writes.workloads(target, chosen)
        missing = [role for role in ("canary", "stable") if not sides[role]]
        if missing:
            versions = ", ".join(f"{self.label}={getattr(plan, role)}" for role in missing)
            return self._refuse("workloads", f"no pods of {versions} behind service {target.name}: nothing to measure",
                                f"kubectl get pods -n {target.namespace} --show-labels")
        self.queries = {role: promql.side_queries(target.namespace, sides[role], plan.interval)
                        for role in ("canary", "stable")}
        if target_ref is None:
            target_ref, tried = discover(self.runner)
            if target_ref is None:
                self.report.error = errors.EnvironmentProblem(
                    f"no Prometheus found (looked for {', '.join(tried)}); "
                    "give --prometheus NS/NAME:PORT or --prometheus-url URL")
                return self._done("error")
            progress(f"using Prometheus {target_ref} (through the API server's service proxy)")
        self.client = Client(self.runner, target_ref, sleep=self.sleep)
        try:
            start = schedule.start_point(writes.stored_run(target), plan, run_id=uuid.uuid4().hex[:12],
                                         holder=self.me, now=self.clock(), restart=self.restart, force=self.force)
        except schedule.Busy as busy:
            self.state = held = busy.state
            return self._refuse(
                "run-held", f"another canary run holds service {target.name}: run {held.id} by {held.holder}, "
                f"at {held.position}, last written {duration_text(max(self.clock() - held.renewed, 0))} ago",
                "wait for it to end; if it died, its lease ends in "
                f"{duration_text(max(held.renewed + held.lease - self.clock(), 0))} (or take it over with --force)")
        except schedule.AlreadyFailed as failed:
            self.state = failed.state
            return self._refuse(
                "run-failed", f"the last run of {plan.canary} (run {failed.state.id}) was rolled back at "
                f"{failed.state.position}: {failed.state.reason}",
                "fix the canary, then run the same command with --restart to try it again")
        self.state = start.state
        if start.note:
            progress(start.note)
        if start.done:
            self.report.add(Check("run-done", "canary", f"service/{target.name}", PASS, start.note))
            return self._succeeded()
        if self.settings.dry_run:
            return self._dry_run(start)
        try:  # reachable, and answering, before any traffic moves
            self.client.query(self.queries["canary"].requests, at=self.clock())
        except prometheus.PrometheusError as exc:
            self.report.error = PrometheusFailed(f"{exc.message}; nothing was changed")
            return self._done("error")
        # Ctrl-C and a CI job's SIGTERM both stop the run cleanly, also when started from a shell
        # that left SIGINT ignored (a background job).
        handlers = {sig: signal.signal(sig, _raise_interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            return self._loop(first=True)
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)

    def _dry_run(self, start) -> Report:
        lines = schedule_lines(self.plan.steps, self.plan.interval, self.plan.failure_limit, self.queries,
                               str(self.client.target))
        writes.set_weight(self.report, self.settings, self.runner, self.target, self.label, self.plan,
                          start.state.weight, start.state, self.me, self.force, first=True)
        self._done("dry-run", "dry run: nothing changed")
        self.report.text = ([start.note, ""] if start.note else []) + lines
        return self.report

    # -- the loop ----------------------------------------------------------------------------------
    def _loop(self, first: bool) -> Report:
        try:
            if not self._set(self.state, first=first):
                return self._done("refused" if self.report.refused else "error")
            while True:
                measurement = self._wait_and_measure()
                outcome = schedule.after(self.state, measurement.decision.result, self.plan, self.clock(),
                                         reason=measurement.decision.text)
                self.target = writes.reload(self.settings, self.runner, self.target)
                changed = writes.outside_change(self.target, self.state, self.me, self.state.weight)
                if changed:
                    return self._refuse("run-taken", f"stopped: {changed}",
                                        f"see kubectl mesh canary status {self.target.name} -n {self.target.namespace}",
                                        outcome="stopped")
                self.state = outcome.state
                if outcome.action == schedule.ADVANCE:
                    if not self._set(self.state, first=False):
                        # Held where it was (the next weight was refused or did not land): let go of it.
                        self.state = replace(self.state, step=self.state.step - 1)
                        self._release(schedule.HELD, f"step {self.state.step + 2} was not set; see the checks")
                        return self._done("refused" if self.report.refused else "error")
                elif outcome.action == schedule.HOLD:
                    self._record(self.state)
                elif outcome.action == schedule.ROLLBACK:
                    return self._rolled_back(measurement)
                elif outcome.action == schedule.STOP:
                    return self._inconclusive(measurement)
                else:
                    self._record(self.state)
                    return self._succeeded()
        except KeyboardInterrupt:
            return self._stopped(schedule.INTERRUPTED, "interrupted", Interrupted(
                f"interrupted at {self.state.position}; the weight is left where it was; "
                "run the same command again to resume"))
        except prometheus.PrometheusError as exc:
            return self._prometheus_failed(exc)
        except errors.MeshError as exc:
            return self._stopped(schedule.HELD, "error", exc)

    def _set(self, state, *, first: bool) -> bool:
        """The step's weight (after a check of the pods read just before, see _loop)."""
        return writes.set_weight(self.report, self.settings, self.runner, self.target, self.label, self.plan,
                                 state.weight, state, self.me, self.force, first=first)

    def _record(self, state) -> None:
        if not writes.record(self.report, self.settings, self.runner, self.target, self.label, self.plan, state,
                             self.me):
            raise self.report.error or errors.Refused("the run's state could not be written")

    def _step_budget(self) -> None:
        """--timeout bounds each step's work (reads, queries, writes), not the schedule's waits:
        a run lasts as long as its steps and intervals say."""
        self.runner.deadline = time.monotonic() + self.runner.timeout

    def _wait_and_measure(self) -> Measurement:
        state, plan = self.state, self.plan
        started = self.clock()
        deadline = started + plan.interval
        last = self.measurements[-1] if self.measurements else None
        next_line = started
        while True:
            now = self.clock()
            if now >= deadline:
                break
            if now >= next_line:
                progress(waiting_line(state.step, len(state.steps), state.weight, deadline - now, last))
                next_line = now + PROGRESS_EVERY
            self.sleep(min(0.5, deadline - now))
        at = self.clock()
        self._step_budget()
        sides = self.client.measure(self.queries, at)
        decision = decide(sides["canary"], self.thresholds, duration_text(plan.interval))
        measurement = Measurement(at, state.step, len(state.steps), state.weight, sides["canary"], sides["stable"],
                                  decision)
        self.measurements.append(measurement)
        progress(measurement_line(measurement))
        return measurement

    # -- endings -------------------------------------------------------------------------------------
    def _succeeded(self) -> Report:
        weight = self.state.weight
        summary = f"promoted: canary {self.plan.canary} at {weight}%"
        if self.finish:
            self.target = writes.reload(self.settings, self.runner, self.target)
            apply_finish(self.report, self.runner, self.target, self.force)
            if self.report.refused or self.report.failed:
                summary += "; not finished: see the checks (run `canary finish` once they pass)"
            else:
                self.finished = True
                summary += f"; finished: {self.plan.canary} is the new stable"
        return self._done("promoted", summary)

    def _rolled_back(self, measurement) -> Report:
        m, failures = measurement, self.state.failures
        ok = writes.roll_back(self.report, self.settings, self.runner, self.target, self.label, self.plan,
                              self.state, self.me)
        self.report.add(Check(
            "analysis", "canary", f"service/{self.target.name}", FAIL,
            f"rolled back after {failures} failed interval{'s' if failures != 1 else ''} at {m.weight}%: "
            f"{m.decision.text} (canary over {duration_text(self.plan.interval)}: "
            f"{percent_text(m.canary.success_rate)} success, p99 {millis_text(m.canary.p99_ms)}; stable: "
            f"{percent_text(m.stable.success_rate)}, p99 {millis_text(m.stable.p99_ms)})",
            "look at the canary's errors and latency; fix it, then run the same command with --restart" if ok
            else f"the rollback did not land: kubectl mesh canary rollback {self.target.name} "
                 f"-n {self.target.namespace}"))
        return self._done("rolled-back", f"rolled back: {m.decision.text}; canary weight 0"
                          if ok else "rollback failed: see above")

    def _inconclusive(self, measurement) -> Report:
        self._record(self.state)
        self.report.error = Inconclusive(
            f"inconclusive: {measurement.decision.text}, {self.state.inconclusive} interval(s) in a row; "
            f"stopped at {self.state.position}, nothing promoted. Send traffic to the service (or lower "
            "--min-requests), then run the same command again to resume")
        return self._done("inconclusive")

    def _prometheus_failed(self, exc) -> Report:
        weight = self.state.weight
        self._step_budget()
        if self.on_error == "hold":
            did = f"the canary weight is kept at {weight}% (--on-error hold); run the same command again to resume"
            self._release(schedule.HELD, exc.message)
        else:
            self.target = writes.reload(self.settings, self.runner, self.target)
            state = schedule.released(self.state, schedule.ABORTED, exc.message, self.clock())
            ok = writes.roll_back(self.report, self.settings, self.runner, self.target, self.label, self.plan,
                                  state, self.me)
            self.state = state
            did = (f"rolled back: canary weight 0 (was {weight}%)" if ok
                   else f"the rollback did not land; the canary weight may still be {weight}%")
        self.report.add(Check("prometheus", "canary", f"service/{self.target.name}", WARN, exc.message))
        self.report.error = PrometheusFailed(f"{exc.message}; {did}")
        return self._done("error")

    def _stopped(self, phase: str, outcome: str, error: errors.MeshError) -> Report:
        self._release(phase, error.message)
        self.report.error = error
        return self._done(outcome)

    def _release(self, phase: str, reason: str) -> None:
        """Let go of the run (best effort: a release that fails leaves the lease to expire)."""
        state = schedule.released(self.state, phase, reason, self.clock())
        self._step_budget()
        try:
            self.target = writes.reload(self.settings, self.runner, self.target)
            if writes.outside_change(self.target, self.state, self.me, self.state.weight) is None:
                writes.record(Report(), self.settings, self.runner, self.target, self.label, self.plan, state,
                              self.me)
                self.state = state
        except (errors.MeshError, KeyboardInterrupt):
            progress("could not record where the run stopped; its lease will expire")

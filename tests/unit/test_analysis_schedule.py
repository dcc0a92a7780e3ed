"""Decisions per interval, the run's state machine and its stored state
(kubectl_mesh.analysis.decision, .schedule, .options)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from kubectl_mesh.analysis import options, schedule
from kubectl_mesh.analysis.decision import FAIL, INCONCLUSIVE, PASS, Side, Thresholds, decide
from kubectl_mesh.analysis.schedule import (
    ABORTED,
    ADVANCE,
    DONE,
    FAILED,
    HELD,
    HOLD,
    INTERRUPTED,
    ROLLBACK,
    RUNNING,
    STOP,
    SUCCEEDED,
    AlreadyFailed,
    Busy,
    Plan,
    RunState,
)
from kubectl_mesh.analysis.schedule import INCONCLUSIVE as STOPPED

T = Thresholds(success_rate=99, max_p99_ms=500, min_requests=20)


# -- decide ------------------------------------------------------------------------------------
def test_healthy_passes_with_the_figures():
    d = decide(Side(requests=120, success_rate=99.5, p99_ms=24.9), T, "1m")
    assert d.result == PASS and d.text == "success rate 99.50% >= 99.00%, p99 25ms <= 500ms"


def test_low_success_rate_fails_with_the_measured_rate():
    d = decide(Side(requests=120, success_rate=80.0, p99_ms=20), T, "1m")
    assert d.result == FAIL and d.reasons == ["success rate 80.00% is below 99.00%"]


def test_slow_fails_and_both_reasons_are_given():
    d = decide(Side(requests=120, success_rate=50.0, p99_ms=995.0), T, "1m")
    assert d.result == FAIL and d.reasons == ["success rate 50.00% is below 99.00%", "p99 latency 995ms is above 500ms"]


def test_latency_above_the_largest_bucket_fails():
    assert decide(Side(requests=50, success_rate=100, p99_ms=float("inf")), T, "1m").result == FAIL


@pytest.mark.parametrize("side", [
    Side(),  # empty results
    Side(requests=19.9, success_rate=100, p99_ms=10),  # too few
    Side(requests=0, success_rate=None, p99_ms=None),
])
def test_too_little_traffic_is_inconclusive_never_a_pass(side):
    d = decide(side, T, "1m")
    assert d.result == INCONCLUSIVE and "fewer than --min-requests 20" in d.text


def test_too_little_traffic_is_inconclusive_even_when_it_all_failed():
    # 5 requests, all 500s: not enough to judge either way (Flagger would fail on "no values").
    assert decide(Side(requests=5, success_rate=0.0, p99_ms=10), T, "1m").result == INCONCLUSIVE


def test_no_traffic_with_min_requests_zero_is_still_inconclusive():
    d = decide(Side(requests=None), Thresholds(min_requests=0), "30s")
    assert d.result == INCONCLUSIVE and d.text == "0 requests to the canary in 30s, no traffic to judge"


def test_requests_but_no_histogram_is_inconclusive():
    d = decide(Side(requests=100, success_rate=100.0, p99_ms=None), T, "1m")
    assert d.result == INCONCLUSIVE and "istio_request_duration_milliseconds_bucket" in d.text


def test_side_as_data():
    assert Side(requests=12.345, success_rate=99.12345, p99_ms=float("inf")).as_dict() == {
        "requests": 12.3, "successRate": 99.123, "p99Ms": "+Inf"}


# -- the state machine -------------------------------------------------------------------------
PLAN = Plan(stable="v1", canary="v2", steps=(10, 25, 50, 100), interval=60.0, failure_limit=2)


def fresh(**changes) -> RunState:
    state = schedule.new_run(PLAN, "r1", "me@host:1", now=1000.0)
    return replace(state, **changes) if changes else state


def test_a_healthy_run_walks_every_step_then_is_done():
    state, actions = fresh(), []
    for _ in range(4):
        outcome = schedule.after(state, PASS, PLAN, now=1100.0)
        state = outcome.state
        actions.append(outcome.action)
    assert actions == [ADVANCE, ADVANCE, ADVANCE, DONE]
    assert state.phase == SUCCEEDED and state.weight == 100 and state.holder == ""


def test_failures_hold_then_roll_back_at_the_limit_counted_over_the_run():
    state = fresh()
    first = schedule.after(state, FAIL, PLAN, now=1060.0, reason="success rate 80%")
    assert first.action == HOLD and first.state.failures == 1 and first.state.step == 0
    passed = schedule.after(first.state, PASS, PLAN, now=1120.0)
    assert passed.action == ADVANCE and passed.state.failures == 1  # not forgiven by a pass
    second = schedule.after(passed.state, FAIL, PLAN, now=1180.0, reason="p99 900ms")
    assert second.action == ROLLBACK and second.state.phase == FAILED and second.state.reason == "p99 900ms"
    assert second.state.holder == ""


def test_inconclusive_holds_then_stops_where_it_is():
    first = schedule.after(fresh(step=1), INCONCLUSIVE, PLAN, now=1060.0)
    assert first.action == HOLD and first.state.step == 1
    second = schedule.after(first.state, INCONCLUSIVE, PLAN, now=1120.0, reason="3 requests")
    assert second.action == STOP and second.state.phase == STOPPED and second.state.weight == 25


def test_inconclusive_count_restarts_at_each_step():
    held = schedule.after(fresh(), INCONCLUSIVE, PLAN, now=1060.0).state
    advanced = schedule.after(held, PASS, PLAN, now=1120.0).state
    assert advanced.inconclusive == 0
    assert schedule.after(advanced, INCONCLUSIVE, PLAN, now=1180.0).action == HOLD


def test_failure_limit_one_rolls_back_at_the_first_fail():
    plan = replace(PLAN, failure_limit=1)
    assert schedule.after(fresh(), FAIL, plan, now=1060.0).action == ROLLBACK


# -- where a run starts -------------------------------------------------------------------------
def start(stored, now=2000.0, **kw):
    return schedule.start_point(stored, PLAN, run_id="r2", holder="other@host:2", now=now, **kw)


def test_nothing_stored_starts_at_the_first_step():
    s = start(None)
    assert not s.resumed and s.state.step == 0 and s.state.holder == "other@host:2" and s.state.id == "r2"


def test_a_live_holder_is_busy_until_its_lease_expires():
    held = fresh(step=2, renewed=1990.0)
    with pytest.raises(Busy) as caught:
        start(held)
    assert caught.value.state.holder == "me@host:1"
    expired = start(held, now=1990.0 + PLAN.lease + 1)
    assert expired.resumed and expired.state.step == 2 and "stopped renewing" in expired.note


def test_force_takes_over_a_live_run():
    s = start(fresh(step=1, renewed=1990.0), force=True)
    assert s.resumed and s.state.holder == "other@host:2" and s.state.id == "r1"


@pytest.mark.parametrize("phase", [INTERRUPTED, HELD, STOPPED])
def test_a_released_run_resumes_at_its_step_keeping_failures(phase):
    stored = fresh(step=1, failures=1, inconclusive=1, phase=phase, holder="")
    s = start(stored)
    assert s.resumed and s.state.step == 1 and s.state.failures == 1 and s.state.inconclusive == 0
    assert s.state.phase == RUNNING and s.state.holder == "other@host:2" and f"({phase})" in s.note


def test_a_succeeded_run_is_done():
    s = start(fresh(step=3, phase=SUCCEEDED, holder=""))
    assert s.done and "already promoted to 100%" in s.note


def test_a_failed_run_needs_restart():
    stored = fresh(step=0, phase=FAILED, holder="", reason="success rate 80.00% is below 99.00%")
    with pytest.raises(AlreadyFailed):
        start(stored)
    assert start(stored, restart=True).state.step == 0


def test_an_aborted_run_starts_again():
    s = start(fresh(step=2, phase=ABORTED, holder="", reason="Prometheus unreachable"))
    assert not s.resumed and s.state.step == 0 and "after an error" in s.note


def test_other_versions_or_steps_start_a_new_run():
    other = replace(fresh(step=2, phase=INTERRUPTED, holder=""), canary="v3")
    assert not start(other).resumed
    steps = replace(fresh(step=2, phase=INTERRUPTED, holder=""), steps=(20, 100), step=1)
    assert not start(steps).resumed and "had steps 20,100" in start(steps).note


# -- the stored form ----------------------------------------------------------------------------
def test_the_annotation_keeps_roles_and_other_keys_and_round_trips():
    value = schedule.annotation_with('{"canary":"canary","stable":"stable","note":"x"}',
                                     {"stable": "stable", "canary": "canary"}, fresh(step=1))
    doc, state = schedule.read_annotation(value)
    assert doc["note"] == "x" and doc["stable"] == "stable" and state == fresh(step=1)
    cleared, none = schedule.read_annotation(schedule.annotation_with(value, {"stable": "s", "canary": "c"}, None))
    assert none is None and "run" not in cleared and cleared["stable"] == "s"


@pytest.mark.parametrize("run", [
    None, "x", {"id": "r"}, {**fresh().as_dict(), "step": 9}, {**fresh().as_dict(), "steps": [0, 50]},
    {**fresh().as_dict(), "phase": "dancing"}, {**fresh().as_dict(), "step": True},
    {**fresh().as_dict(), "failures": "1"},
])
def test_untrustworthy_stored_runs_are_ignored(run):
    _, state = schedule.read_annotation(json.dumps({"stable": "stable", "canary": "canary", "run": run}))
    assert state is None


def test_garbage_annotations_are_no_run():
    assert schedule.read_annotation("{not json")[1] is None
    assert schedule.read_annotation("[1]") == ({}, None)


# -- options ------------------------------------------------------------------------------------
def test_steps():
    assert options.steps("10,25,50,100") == (10, 25, 50, 100)
    assert options.steps(" 5 , 100") == (5, 100)
    for bad in ("", "10,,20", "0,10", "10,101", "50,25", "10,10", "１０,20", "10.5", "-1"):
        with pytest.raises(ValueError, match="--steps"):
            options.steps(bad)


def test_durations():
    assert options.interval("1m") == 60 and options.interval("1m30s") == 90 and options.interval("2s") == 2
    assert options.max_p99_ms("500ms") == 500 and options.max_p99_ms("1.5s") == 1500
    for bad in ("", "60", "0.5s", "25h", "٣s", "1d"):
        with pytest.raises(ValueError, match="--interval"):
            options.interval(bad)
    with pytest.raises(ValueError, match="--max-p99"):
        options.max_p99_ms("0ms")


def test_success_rate_and_whole_numbers():
    assert options.success_rate("99") == 99.0 and options.success_rate("99.95") == 99.95
    for bad in ("101", "-1", "ninety", "99%", "1e2", "９９"):
        with pytest.raises(ValueError, match="--success-rate"):
            options.success_rate(bad)
    assert options.whole("20", "--min-requests", 0, 10**6) == 20
    for bad in ("-1", "2.5", "x", "٣"):
        with pytest.raises(ValueError, match="--min-requests"):
            options.whole(bad, "--min-requests", 0, 10**6)

"""apply/plan.py: a command's writes run in order, their outcome recorded in the Report."""

from __future__ import annotations

from kubectl_mesh import errors
from kubectl_mesh.apply.plan import Write, execute
from kubectl_mesh.apply.writer import ObjectRef
from kubectl_mesh.report import APPLIED, FAILED, Report, Step

DR = ObjectRef("DestinationRule", "my-app", "my-app")
VS = ObjectRef("VirtualService", "my-app", "my-app")


def _step(ref, status, restore=""):
    return Step("update", ref.target, "kubectl patch ...", "r", status, restore=restore)


def test_every_write_runs_in_order_and_its_steps_are_the_plan():
    order = []
    writes = [Write([DR], ("patch",), lambda: order.append("dr") or _step(DR, APPLIED)),
              Write([VS], ("patch",), lambda: order.append("vs") or [_step(VS, APPLIED)])]
    report = Report()
    assert execute(report, writes) is True
    assert order == ["dr", "vs"] and [s.target for s in report.plan] == [DR.target, VS.target]
    assert report.notes == [] and report.error is None


def test_an_error_stops_the_plan_and_says_what_was_changed_and_what_was_not():
    def boom():
        raise errors.TimedOut("timed out")

    writes = [Write([DR], ("patch",), lambda: _step(DR, APPLIED, restore="kubectl replace -f dr.yaml")),
              Write([VS], ("patch",), boom)]
    report = Report()
    assert execute(report, writes) is False
    assert isinstance(report.error, errors.TimedOut) and report.exit_code == errors.ENVIRONMENT
    assert report.notes == [
        "not changed: virtualservice/my-app (stopped by the error above; run the command again)",
        "changed before the error: destinationrule/my-app (to undo: kubectl replace -f dr.yaml)",
    ]


def test_a_write_that_did_not_land_stops_those_after_it():
    ran = []
    writes = [Write([DR], ("patch",), lambda: _step(DR, FAILED)),
              Write([VS], ("patch",), lambda: ran.append("vs") or _step(VS, APPLIED))]
    report = Report()
    assert execute(report, writes) is False
    assert ran == [] and report.exit_code == errors.CHECK_FAILED
    assert report.notes == ["not changed: virtualservice/my-app (destinationrule/my-app did not land)"]


def test_the_plan_names_its_targets_and_verbs_before_anything_runs():
    write = Write([DR, VS], ("get", "patch"), lambda: [])
    assert write.names == ["destinationrule/my-app", "virtualservice/my-app"] and write.verbs == ("get", "patch")

"""`circuit-breaker`: the guide's step 4, merged into the host's one DestinationRule.

    kubectl mesh circuit-breaker SVC [--max-connections 100 --http1-max-pending-requests 50
        --http2-max-requests 100 --h2-upgrade-policy DEFAULT --consecutive-5xx 5
        --interval 30s --base-ejection-time 60s --max-ejection-percent 50]
    kubectl mesh circuit-breaker remove SVC
    kubectl mesh circuit-breaker status SVC

The defaults are the guide's numbers. The settings go into the top-level
trafficPolicy of the DestinationRule that already serves the host (the one
`canary` writes its subsets into), never a second rule: Istio would keep
only the first rule's traffic policy and silently drop the second's. When
several rules already define the host, the command refuses and names them.
"""

from __future__ import annotations

import click
from click.core import ParameterSource

from kubectl_mesh import errors, merge, shapes, traffic, validate
from kubectl_mesh.apply.plan import execute
from kubectl_mesh.apply.writer import ObjectRef, Writer
from kubectl_mesh.cluster_names import complete_services
from kubectl_mesh.command import DefaultAction, DefaultSubcommandGroup, mesh_command, progress
from kubectl_mesh.commands import _service
from kubectl_mesh.mesh import name_of
from kubectl_mesh.report import APPLIED, PASS, SKIP, UNCHANGED, WARN, Check, Report

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
INT32_MAX = 2**31 - 1
UINT32_MAX = 2**32 - 1
H2_POLICIES = ("DEFAULT", "DO_NOT_UPGRADE", "UPGRADE")
WHY_ONE_RULE = "Istio keeps only the first one's traffic policy, so a circuit breaker in another is ignored"


def validated_settings(options: dict) -> dict:
    """The circuit-breaker settings from the options, checked; exit 2 on the first bad one."""
    checks = {
        "max_connections": lambda v: validate.integer(v, what="--max-connections", minimum=1, maximum=INT32_MAX),
        "http1_max_pending_requests": lambda v: validate.integer(
            v, what="--http1-max-pending-requests", minimum=1, maximum=INT32_MAX),
        "http2_max_requests": lambda v: validate.integer(v, what="--http2-max-requests", minimum=1, maximum=INT32_MAX),
        "consecutive_5xx": lambda v: validate.integer(v, what="--consecutive-5xx", minimum=1, maximum=UINT32_MAX),
        "interval": lambda v: _duration(v, "--interval"),
        "base_ejection_time": lambda v: _duration(v, "--base-ejection-time"),
        "max_ejection_percent": lambda v: validate.percent(v, what="--max-ejection-percent"),
        "h2_upgrade_policy": _h2_policy,
    }
    return {key: checks[key](options[key]) for key in merge.BREAKER_PATHS}


def _duration(value: str, what: str) -> str:
    try:
        return validate.duration(value)
    except errors.UsageError as exc:
        raise errors.UsageError(f"{what}: {exc.message}") from None


def _h2_policy(value: str) -> str:
    upper = str(value).upper()
    if upper not in H2_POLICIES:
        raise errors.UsageError(f'invalid --h2-upgrade-policy "{value}": choose from {", ".join(H2_POLICIES)}')
    return upper


EXAMPLES = (
    ("kubectl mesh circuit-breaker my-app -n my-app", "the guide's limits, merged into my-app's one DestinationRule"),
    ("kubectl mesh circuit-breaker my-app --max-connections 200 --consecutive-5xx 3 -n my-app",
     "other limits; those not given keep their value"),
    ("kubectl mesh circuit-breaker status my-app -n my-app", "the breaker in force and the rule it comes from"),
    ("kubectl mesh circuit-breaker remove my-app -n my-app", "take it out; TLS, load balancing and subsets stay"),
)


@mesh_command("circuit-breaker", group=True, cls=DefaultSubcommandGroup, invoke_without_command=True,
              usage="SVC [OPTIONS] | remove SVC | status SVC", examples=EXAMPLES,
              context_settings={**CONTEXT, "ignore_unknown_options": True})
def command(settings):
    """Add, show or remove a service's circuit breaker (the guide's step 4).

    The main form sets SVC's connection pool and outlier detection (the
    guide's values by default). They are merged into the DestinationRule that
    serves the host, never a second one, which Istio would silently ignore.
    """
    ctx = click.get_current_context()
    if ctx.invoked_subcommand is None:
        raise click.UsageError("missing SVC (or one of remove, status and SVC)", ctx)


def _option(name, key, metavar, help_text):
    default = merge.BREAKER_DEFAULTS[key]
    return click.option(name, key, metavar=metavar, default=str(default), show_default=True, help=help_text)


@mesh_command("set", hidden=True, cls=DefaultAction, context_settings=CONTEXT, examples=EXAMPLES[:2])
@click.argument("svc", metavar="SVC", shell_complete=complete_services)
@_option("--max-connections", "max_connections", "N", "connectionPool.tcp.maxConnections.")
@_option("--http1-max-pending-requests", "http1_max_pending_requests", "N",
         "connectionPool.http.http1MaxPendingRequests.")
@_option("--http2-max-requests", "http2_max_requests", "N", "connectionPool.http.http2MaxRequests.")
@_option("--h2-upgrade-policy", "h2_upgrade_policy", "POLICY",
         "connectionPool.http.h2UpgradePolicy: DEFAULT, DO_NOT_UPGRADE or UPGRADE.")
@_option("--consecutive-5xx", "consecutive_5xx", "N", "outlierDetection.consecutive5xxErrors.")
@_option("--interval", "interval", "DURATION", "outlierDetection.interval.")
@_option("--base-ejection-time", "base_ejection_time", "DURATION", "outlierDetection.baseEjectionTime.")
@_option("--max-ejection-percent", "max_ejection_percent", "PERCENT", "outlierDetection.maxEjectionPercent.")
@click.option("--force", is_flag=True, help="With several DestinationRules for the host, change the oldest.")
def set_command(settings, svc, force, **options):
    """Set SVC's circuit breaker (connection pool and outlier detection).

    Options given are set; an option not given keeps the rule's current
    value, or takes the guide's value (the default shown) when the rule has
    none, so a value tuned by hand survives a later run.
    """
    svc = validate.dns1123_label(svc, what="service name")
    wanted = validated_settings(options)
    ctx = click.get_current_context()
    given = {key for key in wanted
             if ctx.get_parameter_source(key) not in (ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP)}
    runner = settings.runner()
    target = _service.load(settings, runner, svc)
    report = Report(title=f"Circuit breaker for service {svc} in {target.namespace}")
    _service.guard_single(report, target, "DestinationRule", force, WHY_ONE_RULE)
    dr_name = name_of(target.rule) if target.rule else svc
    if target.rule is None and _service.refuse_clash(report, target, "DestinationRule", dr_name):
        return report
    report.data["circuitBreaker"] = shapes.circuit_breaker(target.snapshot, target.fqdn, target.namespace)  # live
    report.data["requested"] = {"circuitBreaker": {"settings": traffic.circuit_breaker(merge.destination_rule_breaker(
        target.rule, name=dr_name, namespace=target.namespace, host=svc,
        settings={k: v for k, v in wanted.items() if k in given},
        defaults={k: v for k, v in wanted.items() if k not in given}))}}
    if report.refused:
        return report
    if target.rule is not None:
        report.add(Check("destination-rule", "objects", f"destinationrule/{dr_name}", PASS,
                         f"merging into destinationrule/{dr_name}, the one rule for {target.fqdn}"))

    def merged(current):
        if current is not None and traffic.dr_host(current) != target.fqdn:
            raise errors.Refused(f"destinationrule/{dr_name} no longer has host {target.fqdn}; nothing written")
        return merge.destination_rule_breaker(
            current, name=dr_name, namespace=target.namespace, host=svc,
            settings={k: v for k, v in wanted.items() if k in given},
            defaults={k: v for k, v in wanted.items() if k not in given},
        )

    _write(report, runner, target, ObjectRef("DestinationRule", target.namespace, dr_name), merged,
           target.rule, "connectionPool and outlierDetection in the top-level trafficPolicy")
    return report


def _write(report, runner, target, ref, merged, current, reason):
    """The one write; then the breaker as the command leaves it (the rule written, if it landed)."""
    planned: list = []

    def planning(obj):
        result = merged(obj)
        planned.append(result)
        return result

    writer = Writer(runner, progress=progress)
    execute(report, [writer.applying(ref, planning, current, reason=reason, action="circuit-breaker")], runner=runner)
    landed = report.plan and report.plan[-1].status in (APPLIED, UNCHANGED)
    written = [planned[-1]] if landed and planned and planned[-1] is not None else []
    report.data["circuitBreaker"] = shapes.circuit_breaker(target.snapshot, target.fqdn, target.namespace,
                                                           written=written)


@mesh_command("remove", context_settings=CONTEXT, examples=[
    ("kubectl mesh circuit-breaker remove my-app -n my-app", "take the breaker out of my-app's DestinationRule"),
    ("kubectl mesh circuit-breaker remove my-app -n my-app --dry-run", "the diff it would write"),
])
@click.argument("svc", metavar="SVC", shell_complete=complete_services)
@click.option("--force", is_flag=True, help="With several DestinationRules for the host, change the oldest.")
def remove(settings, svc, force):
    """Take connectionPool and outlierDetection out of SVC's DestinationRule.

    TLS, load-balancer, port-level and subset settings stay; the rule stays.
    """
    svc = validate.dns1123_label(svc, what="service name")
    runner = settings.runner()
    target = _service.load(settings, runner, svc)
    report = Report(title=f"Remove the circuit breaker of service {svc} in {target.namespace}")
    _service.guard_single(report, target, "DestinationRule", force, WHY_ONE_RULE)
    if report.refused:
        return report
    if target.rule is None:
        report.add(Check("destination-rule", "objects", f"service/{svc}", SKIP,
                         f"no DestinationRule for {target.fqdn}: there is no circuit breaker to remove"))
        report.data["circuitBreaker"] = shapes.circuit_breaker(target.snapshot, target.fqdn, target.namespace)
        report.summary = "nothing to do"
        return report
    dr_name = name_of(target.rule)
    report.data["circuitBreaker"] = shapes.circuit_breaker(target.snapshot, target.fqdn, target.namespace)  # live
    report.data["requested"] = {"circuitBreaker": {"settings": {}}}

    def merged(current):
        if current is None:
            return None
        return merge.remove_breaker(current)

    _write(report, runner, target, ObjectRef("DestinationRule", target.namespace, dr_name), merged,
           target.rule, "remove connectionPool and outlierDetection; TLS and load balancing stay")
    return report


@mesh_command("status", context_settings=CONTEXT, examples=[
    ("kubectl mesh circuit-breaker status my-app -n my-app", "the limits in force and where they come from"),
    ("kubectl mesh circuit-breaker status my-app -n my-app -o json", ".circuitBreaker.limits, .circuitBreaker.source"),
])
@click.argument("svc", metavar="SVC", shell_complete=complete_services)
def status(settings, svc):
    """The circuit breaker in force for SVC and the DestinationRule it comes from."""
    svc = validate.dns1123_label(svc, what="service name")
    runner = settings.runner()
    target = _service.load(settings, runner, svc)
    view = shapes.circuit_breaker(target.snapshot, target.fqdn, target.namespace)
    report = Report(title=f"Circuit breaker of service {svc} in {target.namespace}")
    report.data["circuitBreaker"] = view
    if view["settings"]:
        report.text.extend(_settings_lines(view["settings"]))
        report.add(Check("circuit-breaker", "traffic", f"destinationrule/{view['source']}", PASS,
                         f"circuit breaker in force from destinationrule/{view['source']}"))
    else:
        report.add(Check("circuit-breaker", "traffic", f"service/{svc}", SKIP,
                         f"no circuit breaker for {target.fqdn}"
                         + ("" if view["destinationRules"] else " (no DestinationRule)")))
    for ignored in view["ignored"]:
        report.add(Check("ignored-policy", "traffic", f"destinationrule/{ignored}", WARN,
                         f"destinationrule/{ignored} has a circuit breaker that Istio ignores: "
                         f"destinationrule/{view['source'] or view['destinationRules'][0]} is older and its "
                         "traffic policy wins",
                         "merge the settings into one DestinationRule for the host"))
    if len(view["destinationRules"]) > 1 and not view["ignored"]:
        report.add(Check("single-destination-rule", "traffic", f"service/{svc}", WARN,
                         f"{len(view['destinationRules'])} DestinationRules define {target.fqdn}: "
                         f"{', '.join(view['destinationRules'])}; only the first traffic policy is used",
                         "merge them into one DestinationRule"))
    return report


def _settings_lines(settings: dict) -> list[str]:
    pool = settings.get("connectionPool") or {}
    outlier = settings.get("outlierDetection") or {}
    lines = []
    for section, values in (("tcp", pool.get("tcp") or {}), ("http", pool.get("http") or {})):
        for key, value in values.items():
            lines.append(f"connectionPool.{section}.{key}: {value}")
    for key, value in outlier.items():
        lines.append(f"outlierDetection.{key}: {value}")
    return lines


for _sub in (set_command, remove, status):
    command.add_command(_sub)

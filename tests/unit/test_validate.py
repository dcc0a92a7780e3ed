"""Input validation: every bad value is a UsageError (exit 2) naming the value."""

from decimal import Decimal

import pytest

from kubectl_mesh import validate
from kubectl_mesh.errors import USAGE, UsageError


@pytest.mark.parametrize("name", ["my-app", "a", "a1", "1a", "x" * 63])
def test_namespace_accepts_rfc1123_labels(name):
    assert validate.namespace(name) == name


@pytest.mark.parametrize("name", ["Bad_NS", "", "-a", "a-", "a.b", "UPPER", "x" * 64, "a b", "ä"])
def test_namespace_rejects_others_with_the_value_in_the_message(name):
    with pytest.raises(UsageError) as exc:
        validate.namespace(name)
    assert f'"{name}"' in exc.value.message
    assert exc.value.exit_code == USAGE
    assert "\n" not in exc.value.message


def test_resource_name_allows_dots_but_not_underscores():
    assert validate.resource_name("web.v2") == "web.v2"
    with pytest.raises(UsageError):
        validate.resource_name("web_v2")
    with pytest.raises(UsageError):
        validate.resource_name("x" * 254)


@pytest.mark.parametrize("text,seconds", [("30s", 30), ("1m", 60), ("1m30s", 90), ("500ms", Decimal("0.5")),
                                          ("1h", 3600), ("1.5s", Decimal("1.5"))])
def test_durations(text, seconds):
    assert validate.duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["30", "s", "30x", "-5s", "", "30 s", "1d"])
def test_bad_durations(text):
    with pytest.raises(UsageError):
        validate.duration(text)


def test_duration_minimum():
    with pytest.raises(UsageError, match="at least 1ms"):
        validate.duration("0s")


@pytest.mark.parametrize("text,seconds", [("90", 90.0), ("90s", 90.0), ("5m", 300.0), ("0.5", 0.5)])
def test_timeout(text, seconds):
    assert validate.timeout_seconds(text) == seconds


@pytest.mark.parametrize("text", ["0", "0s", "abc", "-1"])
def test_bad_timeout(text):
    with pytest.raises(UsageError):
        validate.timeout_seconds(text)


@pytest.mark.parametrize("value", [0, 50, 100, "10", "+10"])
def test_weights(value):
    assert 0 <= validate.weight(value) <= 100


@pytest.mark.parametrize("value", [-1, 101, "10.5", "ten", True, ""])
def test_bad_weights(value):
    with pytest.raises(UsageError):
        validate.weight(value)


@pytest.mark.parametrize("text,value", [("100m", Decimal("0.1")), ("0.5", Decimal("0.5")), ("2", 2),
                                        ("128Mi", 128 * 2**20), ("1Gi", 2**30), ("1G", 10**9),
                                        ("1e3", 1000), ("1.5Gi", Decimal("1.5") * 2**30), (".5", Decimal("0.5"))])
def test_quantities(text, value):
    assert validate.parse_quantity(text) == value


@pytest.mark.parametrize("text", ["100mb", "1.2.3", "Mi", "", "1 Gi", "abc", "0x10", "1Kb"])
def test_bad_quantities(text):
    with pytest.raises(UsageError, match="quantity"):
        validate.quantity(text)


def test_negative_quantity_rejected():
    with pytest.raises(UsageError, match="negative"):
        validate.quantity("-1")


def test_request_above_limit_rejected():
    validate.quantity_at_most("100m", "1", "cpu")
    validate.quantity_at_most("128Mi", "128Mi", "memory")
    with pytest.raises(UsageError, match="greater than limit"):
        validate.quantity_at_most("2", "500m", "cpu")


@pytest.mark.parametrize("ref,kind,expected", [
    ("deploy/web", None, ("Deployment", "web")),
    ("deployment.apps/web", None, ("Deployment", "web")),
    ("sts/db", None, ("StatefulSet", "db")),
    ("ds/agent", None, ("DaemonSet", "agent")),
    ("web", None, ("Deployment", "web")),
    ("db", "statefulset", ("StatefulSet", "db")),
])
def test_workload_refs(ref, kind, expected):
    assert validate.workload_ref(ref, kind) == expected


@pytest.mark.parametrize("ref,kind", [("pod/web", None), ("deploy/Web", None), ("sts/db", "deployment"),
                                      ("deploy/", None)])
def test_bad_workload_refs(ref, kind):
    with pytest.raises(UsageError):
        validate.workload_ref(ref, kind)


@pytest.mark.parametrize("key", ["version", "app.kubernetes.io/name", "example.com/x_y"])
def test_label_keys(key):
    assert validate.label_key(key) == key


@pytest.mark.parametrize("key", ["", "-x", "a/b/c", "Bad_Prefix/x", "x" * 64])
def test_bad_label_keys(key):
    with pytest.raises(UsageError):
        validate.label_key(key)


def test_label_values():
    assert validate.label_value("v1.2_beta") == "v1.2_beta"
    assert validate.label_value("") == ""
    with pytest.raises(UsageError):
        validate.label_value("-v1")


# -- ASCII digits only, bounded: what kubectl and the API server accept -----------------------
@pytest.mark.parametrize("check,value", [
    (lambda v: validate.quantity(v, "--cpu"), "１００m"),      # fullwidth digits
    (lambda v: validate.quantity(v, "--memory"), "1e400"),     # past int64 (and Decimal's comfort)
    (lambda v: validate.quantity(v, "--memory"), "9999999999999999999999Ei"),
    (lambda v: validate.quantity(v, "--cpu"), "٣"),            # Arabic-Indic digit
    (validate.duration, "٣s"),
    (validate.duration, "3s\n"),
    (validate.weight, "٣"),
    (validate.weight, "１０"),
    (validate.timeout_seconds, "1e400"),
    (validate.timeout_seconds, "99999999999999999999h"),
    (validate.timeout_seconds, "25h"),
    (validate.timeout_seconds, "٣٠s"),
    (validate.namespace, "my-app\n"),
    (validate.namespace, ""),
    (validate.label_value, "v1\n"),
    (validate.label_key, "version\n"),
])
def test_only_ascii_digits_and_bounded_values(check, value):
    with pytest.raises(UsageError):
        check(value)


def test_the_largest_timeout_is_a_day():
    assert validate.timeout_seconds("24h") == 86400.0

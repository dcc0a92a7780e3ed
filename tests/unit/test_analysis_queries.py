"""PromQL building and Prometheus answers (kubectl_mesh.analysis.promql, .prometheus)."""

from __future__ import annotations

import pytest

from kubectl_mesh.analysis import prometheus, promql
from kubectl_mesh.analysis.prometheus import PrometheusError
from tests.helpers import DATA

ANSWERS = DATA / "prometheus"


def test_queries_are_flaggers_on_istio_metrics_for_one_side():
    q = promql.side_queries("my-app", ["my-app-v2"], 60)
    sel = 'reporter="destination", destination_workload_namespace="my-app", destination_workload=~"my-app-v2"'
    assert q.success_rate == (
        f'sum(rate(istio_requests_total{{{sel}, response_code!~"5.*"}}[1m])) '
        f"/ sum(rate(istio_requests_total{{{sel}}}[1m])) * 100")
    assert q.p99 == f"histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{{{sel}}}[1m])) by (le))"
    assert q.requests == f"sum(increase(istio_requests_total{{{sel}}}[1m]))"


def test_several_workloads_are_exact_alternatives_with_dots_escaped():
    q = promql.side_queries("ns", ["web.v2", "api-v2", "api-v2"], 30)
    assert 'destination_workload=~"api-v2|web\\\\.v2"' in q.requests  # RE2 \. inside a PromQL string


def test_string_literals_escape_quotes_and_backslashes():
    assert promql.string_literal('a"b\\c') == '"a\\"b\\\\c"'


@pytest.mark.parametrize("seconds,text", [(60, "1m"), (90, "1m30s"), (3600, "1h"), (5, "5s"), (2.5, "2500ms"),
                                          (7322, "2h2m2s")])
def test_range_durations(seconds, text):
    assert promql.range_duration(seconds) == text


def test_no_workloads_is_a_programming_error():
    with pytest.raises(ValueError):
        promql.side_queries("ns", [], 60)


# -- answers, as Prometheus 2.42 sent them (tests/data/prometheus/SOURCES.md) --------------------
@pytest.mark.parametrize("name,value", [("success-rate.json", 83.44827586206898), ("p99.json", 993.5267857142857),
                                        ("requests.json", 180.61783756851023), ("scalar.json", 1.0)])
def test_a_number(name, value):
    assert prometheus.parse_answer((ANSWERS / name).read_text()) == pytest.approx(value)


@pytest.mark.parametrize("name", ["empty.json", "nan.json"])
def test_no_data_is_none(name):
    assert prometheus.parse_answer((ANSWERS / name).read_text()) is None


def test_an_error_answer_names_its_type_and_message():
    with pytest.raises(PrometheusError, match=r"error \(bad_data\): invalid parameter .*unclosed left parenthesis"):
        prometheus.parse_answer((ANSWERS / "error-bad-data.json").read_text())


def test_plus_inf_is_a_value():
    text = '{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"+Inf"]}]}}'
    assert prometheus.parse_answer(text) == float("inf")


@pytest.mark.parametrize("text,kind", [
    ("<html>502 Bad Gateway</html>", "bad-answer"),
    ("[]", "bad-answer"),
    ('{"status":"success"}', "bad-answer"),
    ('{"status":"success","data":{"resultType":"matrix","result":[]}}', "bad-answer"),
    ('{"status":"success","data":{"resultType":"vector","result":[{"value":[1,"1"]},{"value":[1,"2"]}]}}',
     "bad-answer"),
    ('{"status":"success","data":{"resultType":"vector","result":[{"value":[1,"x"]}]}}', "bad-answer"),
    ('{"status":"success","data":{"resultType":"vector","result":[{"value":[1,2]}]}}', "bad-answer"),
    ('{"status":"error","errorType":"execution","error":"query timed out"}', "error"),
])
def test_anything_else_is_an_error(text, kind):
    with pytest.raises(PrometheusError) as caught:
        prometheus.parse_answer(text)
    assert caught.value.kind == kind


def test_untrusted_text_in_messages_has_no_control_characters():
    with pytest.raises(PrometheusError) as caught:
        prometheus.parse_answer('{"status":"error","errorType":"x","error":"\\u001b[2Jgone"}')
    assert "\x1b" not in caught.value.message


def test_a_huge_answer_is_refused():
    with pytest.raises(PrometheusError, match="more than"):
        prometheus.parse_answer(" " * (prometheus.MAX_ANSWER + 1))


# -- addresses ---------------------------------------------------------------------------------
def test_service_proxy_path_encodes_the_query():
    ref = prometheus.parse_service_ref("istio-system/prometheus:9090")
    path = ref.query_path('sum(x{a="b"})', at=1700000000.5)
    assert path == ("/api/v1/namespaces/istio-system/services/prometheus:9090/proxy/api/v1/query?"
                    "query=sum%28x%7Ba%3D%22b%22%7D%29&time=1700000000.500")


@pytest.mark.parametrize("value,port", [("monitoring/prometheus-k8s:web", "web"), ("monitoring/prom", "9090")])
def test_service_refs(value, port):
    assert prometheus.parse_service_ref(value).port == port


@pytest.mark.parametrize("value", ["prometheus:9090", "a/b:0", "a/b:99999", "A/b", "a/b/c", "", "a/b:９０"])
def test_bad_service_refs(value):
    with pytest.raises(ValueError, match="--prometheus"):
        prometheus.parse_service_ref(value)


def test_direct_urls():
    assert prometheus.parse_url("http://127.0.0.1:9090/").query_url("up") == "http://127.0.0.1:9090/api/v1/query?query=up"
    for bad in ("127.0.0.1:9090", "ftp://x", "http://x/?a=b", "http://"):
        with pytest.raises(ValueError, match="--prometheus-url"):
            prometheus.parse_url(bad)


@pytest.mark.parametrize("ports,chosen", [
    ([{"name": "grpc", "port": 10901}, {"name": "web", "port": 9090}], "9090"),
    ([{"name": "http", "port": 80}], "80"),
    ([{"name": "metrics", "port": 8080}, {"port": 9090}], "9090"),
    ([{"name": "a", "port": 1}, {"name": "b", "port": 2}], None),
    ([], None),
])
def test_service_port(ports, chosen):
    assert prometheus.service_port({"spec": {"ports": ports}}) == chosen

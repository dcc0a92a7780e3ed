"""The test API server enforces RBAC as kube-apiserver does: tokens, the bootstrap roles,
bindings and their scope, aggregation, 401/403 bodies, access reviews and impersonation,
driven through the real kubectl.

Expectations are written from Kubernetes' bootstrap policy (tests/data/rbac/cluster-roles.yaml)
and kube-apiserver's documented behaviour, not from the server's code.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.cluster import TestCluster
from tests.cluster.rbac import Identity, Rule, aggregate
from tests.cluster.requestinfo import parse

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tests" / "data" / "rbac" / "cluster-roles.yaml"
RBAC = "rbac.authorization.k8s.io/v1"

APP = """
apiVersion: v1
kind: Namespace
metadata: {name: my-app}
---
apiVersion: v1
kind: Namespace
metadata: {name: other}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: my-app}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: nginx}]}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: my-app}
spec: {selector: {app: web}, ports: [{name: http, port: 80}]}
---
apiVersion: v1
kind: Secret
metadata: {name: token, namespace: my-app}
stringData: {a: b}
"""


def binding(name: str, namespace: str | None, role: str, user: str, role_kind: str = "ClusterRole") -> dict:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": RBAC, "kind": "RoleBinding" if namespace else "ClusterRoleBinding", "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
            "subjects": [{"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}]}


class Kubectl:
    def __init__(self, cluster: TestCluster, tmp: Path):
        self.cluster = cluster
        self.tmp = tmp
        self.binary = shutil.which("kubectl")
        if self.binary is None:
            pytest.fail("kubectl not found on PATH", pytrace=False)

    def __call__(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
        kubeconfig = self.cluster.write_kubeconfig(self.tmp / "kubeconfig")
        env = dict(os.environ, KUBECONFIG=str(kubeconfig), KUBECACHEDIR=str(self.tmp / "cache"),
                   HOME=str(self.tmp / "home"))
        return subprocess.run([self.binary, *args], input=input, capture_output=True, text=True, env=env, timeout=60)

    def can_i(self, *args: str) -> str:
        return self("auth", "can-i", *args).stdout.strip()


@pytest.fixture
def cluster():
    with TestCluster(users=["dev"]) as c:
        c.load(APP)
        yield c


@pytest.fixture
def kubectl(cluster, tmp_path) -> Kubectl:
    return Kubectl(cluster, tmp_path)


# --------------------------------------------------------------------------- request attributes


@pytest.mark.parametrize(("method", "path", "query", "expected"), [
    ("GET", "/api/v1/namespaces/my-app/pods", "", ("list", "", "pods", "", "", "my-app")),
    ("GET", "/api/v1/namespaces/my-app/pods", "watch=true", ("watch", "", "pods", "", "", "my-app")),
    ("GET", "/api/v1/watch/namespaces/my-app/pods", "", ("watch", "", "pods", "", "", "my-app")),
    ("GET", "/api/v1/namespaces/my-app/pods", "fieldSelector=metadata.name%3Dweb",
     ("list", "", "pods", "", "web", "my-app")),
    ("GET", "/api/v1/namespaces/my-app/pods/web", "", ("get", "", "pods", "", "web", "my-app")),
    ("GET", "/api/v1/namespaces/my-app/pods/web/log", "", ("get", "", "pods", "log", "web", "my-app")),
    ("DELETE", "/api/v1/namespaces/my-app/pods", "", ("deletecollection", "", "pods", "", "", "my-app")),
    ("DELETE", "/api/v1/namespaces/my-app/pods/web", "", ("delete", "", "pods", "", "web", "my-app")),
    ("PATCH", "/apis/apps/v1/namespaces/x/deployments/web/scale", "",
     ("patch", "apps", "deployments", "scale", "web", "x")),
    ("PUT", "/apis/apps/v1/namespaces/x/deployments/web", "", ("update", "apps", "deployments", "", "web", "x")),
    ("POST", "/apis/apps/v1/namespaces/x/deployments", "", ("create", "apps", "deployments", "", "", "x")),
    # The namespace object itself is "in" its own namespace: a RoleBinding there can allow `get`.
    ("GET", "/api/v1/namespaces/my-app", "", ("get", "", "namespaces", "", "my-app", "my-app")),
    ("PATCH", "/api/v1/namespaces/my-app", "", ("patch", "", "namespaces", "", "my-app", "my-app")),
    ("PUT", "/api/v1/namespaces/my-app/finalize", "", ("update", "", "namespaces", "finalize", "my-app", "my-app")),
    ("GET", "/api/v1/namespaces", "", ("list", "", "namespaces", "", "", "")),
    ("GET", "/api/v1/nodes", "", ("list", "", "nodes", "", "", "")),
    ("GET", "/api/v1/namespaces/x/services/web:80/proxy/metrics", "",
     ("get", "", "services", "proxy", "web:80", "x")),
    ("GET", "/api/v1/proxy/namespaces/x/services/web", "", ("proxy", "", "services", "", "web", "x")),
    ("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", "",
     ("create", "authorization.k8s.io", "selfsubjectaccessreviews", "", "", "")),
])
def test_request_attributes_as_kubernetes_parses_them(method, path, query, expected):
    a = parse(method, path, query)
    assert a.resource_request
    assert (a.verb, a.api_group, a.resource, a.subresource, a.name, a.namespace) == expected


@pytest.mark.parametrize(("method", "path", "verb"), [
    ("GET", "/version", "get"), ("GET", "/api", "get"), ("GET", "/apis", "get"), ("GET", "/apis/apps/v1", "get"),
    ("GET", "/openapi/v3/apis/apps/v1", "get"), ("POST", "/logs", "post"), ("GET", "/healthz", "get"),
])
def test_non_resource_requests_use_the_method_as_verb(method, path, verb):
    a = parse(method, path)
    assert not a.resource_request and a.verb == verb and a.path == path


def test_rule_matching_semantics():
    def allows(rule: dict, method: str, path: str, query: str = "") -> bool:
        return Rule.of(rule).allows(parse(method, path, query))

    pods_get = {"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}
    assert allows(pods_get, "GET", "/api/v1/namespaces/x/pods/a")
    assert not allows(pods_get, "GET", "/api/v1/namespaces/x/pods")  # list is another verb
    assert not allows(pods_get, "GET", "/api/v1/namespaces/x/pods/a/log")  # a subresource is its own resource
    assert allows({"verbs": ["get"], "apiGroups": [""], "resources": ["pods/log"]}, "GET", "/api/v1/namespaces/x/pods/a/log")
    assert allows({"verbs": ["*"], "apiGroups": ["apps"], "resources": ["*/scale"]},
                  "PUT", "/apis/apps/v1/namespaces/x/statefulsets/db/scale")
    assert not allows({"verbs": ["*"], "apiGroups": ["apps"], "resources": ["*/scale"]},
                      "PUT", "/apis/apps/v1/namespaces/x/statefulsets/db")
    named = {"verbs": ["get", "patch"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["cfg"]}
    assert allows(named, "PATCH", "/api/v1/namespaces/x/configmaps/cfg")
    assert not allows(named, "PATCH", "/api/v1/namespaces/x/configmaps/other")
    assert not allows({**named, "verbs": ["list"]}, "GET", "/api/v1/namespaces/x/configmaps")  # no name
    assert allows({**named, "verbs": ["list"]}, "GET", "/api/v1/namespaces/x/configmaps",
                  "fieldSelector=metadata.name=cfg")
    assert not allows(pods_get | {"apiGroups": ["apps"]}, "GET", "/api/v1/namespaces/x/pods/a")
    urls = {"verbs": ["get"], "nonResourceURLs": ["/apis/*", "/version"]}
    assert allows(urls, "GET", "/apis/apps/v1") and allows(urls, "GET", "/version")
    assert not allows(urls, "GET", "/version/x") and not allows(urls, "POST", "/version")
    assert not allows(urls, "GET", "/api/v1/namespaces/x/pods")


# --------------------------------------------------------------------------- bootstrap policy


def test_builtin_roles_are_the_bootstrap_policy_aggregated(cluster):
    fixture = {r["metadata"]["name"]: r for r in yaml.safe_load(FIXTURE.read_text())["items"]}
    served = {r["metadata"]["name"]: r for r in cluster.list("clusterroles")}
    assert set(fixture) == set(served)
    assert served["cluster-admin"]["rules"] == fixture["cluster-admin"]["rules"]
    view = fixture["system:aggregate-to-view"]["rules"]
    assert served["view"]["rules"] == view
    edit = served["edit"]["rules"]
    assert edit[:len(fixture["system:aggregate-to-edit"]["rules"])] == fixture["system:aggregate-to-edit"]["rules"]
    assert all(rule in edit for rule in view)  # view is aggregated into edit
    assert all(rule in served["admin"]["rules"] for rule in edit + fixture["system:aggregate-to-admin"]["rules"])
    bindings = {b["metadata"]["name"]: b for b in cluster.list("clusterrolebindings")}
    assert [s["name"] for s in bindings["system:discovery"]["subjects"]] == ["system:authenticated"]
    assert [s["name"] for s in bindings["system:public-info-viewer"]["subjects"]] == [
        "system:authenticated", "system:unauthenticated"]
    assert [s["name"] for s in bindings["cluster-admin"]["subjects"]] == ["system:masters"]


def test_aggregation_function_settles_nested_roles():
    roles = [
        {"metadata": {"name": "top"}, "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"to-top": "1"}}]}},
        {"metadata": {"name": "mid", "labels": {"to-top": "1"}},
         "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"to-mid": "1"}}]}},
        {"metadata": {"name": "leaf", "labels": {"to-mid": "1"}}, "rules": [{"verbs": ["get"], "apiGroups": [""],
                                                                           "resources": ["pods"]}]},
    ]
    assert aggregate(roles) == {"mid": roles[2]["rules"], "top": roles[2]["rules"]}


# What each built-in role allows in the namespace it is bound in (by a RoleBinding), read off
# the bootstrap rules: (kubectl auth can-i arguments, expected answer).
ROLE_EXPECTATIONS = {
    "view": [
        (("get", "pods"), "yes"), (("list", "deployments.apps"), "yes"), (("get", "pods", "--subresource=log"), "yes"),
        (("get", "deployments.apps", "--subresource=scale"), "yes"), (("watch", "services"), "yes"),
        (("list", "secrets"), "no"), (("create", "deployments.apps"), "no"), (("patch", "services"), "no"),
        (("get", "services", "--subresource=proxy"), "no"), (("create", "pods", "--subresource=exec"), "no"),
        (("list", "rolebindings.rbac.authorization.k8s.io"), "no"),
    ],
    "edit": [
        (("get", "secrets"), "yes"), (("create", "deployments.apps"), "yes"),
        (("patch", "deployments.apps", "--subresource=scale"), "yes"), (("delete", "services"), "yes"),
        (("get", "services", "--subresource=proxy"), "yes"), (("create", "pods", "--subresource=exec"), "yes"),
        (("impersonate", "serviceaccounts"), "yes"),
        (("create", "roles.rbac.authorization.k8s.io"), "no"), (("patch", "namespaces/my-app"), "no"),
        (("patch", "deployments.apps", "--subresource=status"), "no"),
    ],
    "admin": [
        (("create", "roles.rbac.authorization.k8s.io"), "yes"), (("create", "rolebindings.rbac.authorization.k8s.io"), "yes"),
        (("delete", "roles.rbac.authorization.k8s.io"), "yes"), (("delete", "secrets"), "yes"),
        (("delete", "namespaces/my-app"), "no"), (("patch", "namespaces/my-app"), "no"),
        (("create", "resourcequotas"), "no"),
    ],
    "cluster-admin": [
        (("*", "*"), "yes"), (("patch", "namespaces/my-app"), "yes"), (("delete", "namespaces/my-app"), "yes"),
        (("create", "resourcequotas"), "yes"),
    ],
}
# Whatever the role, a RoleBinding grants nothing outside its namespace or at the cluster scope.
# (Cluster-scoped questions are asked without -n: kubectl would send the namespace along and
# RBAC would answer for that namespace's bindings, as kube-apiserver does.)
EVERY_ROLE = [
    (("get", "pods", "-n", "other"), "no"), (("list", "namespaces"), "no"), (("list", "nodes"), "no"),
    (("get", "namespaces/other"), "no"), (("create", "selfsubjectaccessreviews.authorization.k8s.io"), "yes"),
]


@pytest.mark.parametrize("role", sorted(ROLE_EXPECTATIONS))
def test_builtin_role_bound_in_one_namespace(cluster, kubectl, role):
    cluster.load(binding("dev-role", "my-app", role, "dev"))
    answers = {args: kubectl.can_i(*args, "-n", "my-app", "--context", "dev")
               for args, _ in ROLE_EXPECTATIONS[role]}
    answers |= {args: kubectl.can_i(*args, "--context", "dev") for args, _ in EVERY_ROLE}
    # The namespace object itself is in the namespace: `get namespaces` (view's) bound in my-app allows
    # it (kubectl asks about it in my-app only when told -n my-app, as against a real server).
    answers[("get", "namespaces/my-app")] = kubectl.can_i("get", "namespaces/my-app", "-n", "my-app",
                                                          "--context", "dev")
    assert answers == dict(ROLE_EXPECTATIONS[role] + EVERY_ROLE + [(("get", "namespaces/my-app"), "yes")])
    # The requests themselves get the same answers as the reviews.
    assert kubectl("get", "pods", "-n", "my-app", "--context", "dev").returncode == 0
    assert kubectl("get", "namespace", "my-app", "--context", "dev").returncode == 0
    assert kubectl("get", "pods", "-n", "other", "--context", "dev").returncode == 1
    secrets = kubectl("get", "secrets", "-n", "my-app", "--context", "dev")
    assert secrets.returncode == (1 if role == "view" else 0), secrets.stderr
    write = kubectl("create", "configmap", "c", "-n", "my-app", "--dry-run=server", "--context", "dev")
    assert write.returncode == (1 if role == "view" else 0), write.stderr
    label = kubectl("label", "namespace", "my-app", "team=a", "--dry-run=server", "--context", "dev")
    assert label.returncode == (0 if role == "cluster-admin" else 1), label.stderr
    cluster.assert_healthy()


def test_cluster_role_binding_applies_everywhere(cluster, kubectl):
    cluster.load(binding("dev-view", None, "view", "dev"))
    assert kubectl.can_i("list", "pods", "-A", "--context", "dev") == "yes"
    assert kubectl.can_i("list", "namespaces", "--context", "dev") == "yes"
    assert kubectl.can_i("list", "nodes", "--context", "dev") == "no"  # view has no nodes
    assert kubectl("get", "namespaces", "--context", "dev").returncode == 0


def test_done_when_questions_for_a_developer_with_edit_in_my_app(cluster, kubectl):
    cluster.load(binding("dev-edit", "my-app", "edit", "dev"))
    no = kubectl("auth", "can-i", "list", "namespaces", "--context", "dev")
    assert (no.stdout, no.returncode) == ("no\n", 1)
    yes = kubectl("auth", "can-i", "get", "pods", "-n", "my-app", "--context", "dev")
    assert (yes.stdout, yes.returncode) == ("yes\n", 0)


# --------------------------------------------------------------------------- 401 and 403, word for word


def test_forbidden_messages_as_kube_apiserver_writes_them(cluster, kubectl):
    cluster.load(binding("dev-view", "my-app", "view", "dev"))
    pod = cluster.list("pods", "my-app")[0]["metadata"]["name"]

    def err(*args: str) -> str:
        result = kubectl(*args, "--context", "dev")
        assert result.returncode == 1, result.stdout
        return result.stderr

    assert err("get", "pods", "-n", "other") == (
        'Error from server (Forbidden): pods is forbidden: User "dev" cannot list resource "pods" in API group "" '
        'in the namespace "other"\n')
    assert err("get", "nodes") == (
        'Error from server (Forbidden): nodes is forbidden: User "dev" cannot list resource "nodes" in API group "" '
        "at the cluster scope\n")
    assert err("get", "secret", "token", "-n", "my-app") == (
        'Error from server (Forbidden): secrets "token" is forbidden: User "dev" cannot get resource "secrets" in '
        'API group "" in the namespace "my-app"\n')
    assert err("get", "namespace", "other") == (
        'Error from server (Forbidden): namespaces "other" is forbidden: User "dev" cannot get resource '
        '"namespaces" in API group "" in the namespace "other"\n')
    assert err("scale", "deployment", "web", "--replicas=2", "-n", "my-app") == (
        'Error from server (Forbidden): deployments.apps "web" is forbidden: User "dev" cannot patch resource '
        '"deployments/scale" in API group "apps" in the namespace "my-app"\n')
    assert err("label", "namespace", "my-app", "istio-injection=enabled") == (
        'Error from server (Forbidden): namespaces "my-app" is forbidden: User "dev" cannot patch resource '
        '"namespaces" in API group "" in the namespace "my-app"\n')
    assert kubectl("logs", pod, "-n", "my-app", "--context", "dev").returncode == 0  # view has pods/log
    cluster.load(binding("dev-pods", "other", "pods-only", "dev", role_kind="Role"))
    # A binding to a role that does not exist grants nothing, and the denial says why.
    assert err("get", "pods", "-n", "other") == (
        'Error from server (Forbidden): pods is forbidden: User "dev" cannot list resource "pods" in API group "" '
        'in the namespace "other": RBAC: role.rbac.authorization.k8s.io "pods-only" not found\n')
    review = kubectl("auth", "can-i", "list", "pods", "-n", "other", "--context", "dev")
    assert review.stdout == 'no - RBAC: role.rbac.authorization.k8s.io "pods-only" not found\n'


def test_forbidden_body_is_a_status_object(cluster):
    cluster.load(binding("dev-view", "my-app", "view", "dev"))
    req = urllib.request.Request(cluster.url + "/api/v1/namespaces/my-app/pods/web/log",
                                 headers={"Authorization": f"Bearer {cluster.token('dev')}"})
    req.full_url = cluster.url + "/api/v1/namespaces/my-app/secrets/token"
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=10, context=cluster.ssl_context())
    assert info.value.code == 403
    assert json.loads(info.value.read()) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'secrets "token" is forbidden: User "dev" cannot get resource "secrets" in API group "" in the '
                   'namespace "my-app"',
        "reason": "Forbidden", "details": {"name": "token", "kind": "secrets"}, "code": 403}


def _http(cluster: TestCluster, path: str, token: str | None) -> tuple[int, dict | str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    req = urllib.request.Request(cluster.url + path, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10, context=cluster.ssl_context()) as resp:
            code, raw = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        code, raw = e.code, e.read()
    try:
        return code, json.loads(raw)
    except ValueError:
        return code, raw.decode()


def test_unknown_token_is_401_and_no_token_is_anonymous(cluster, kubectl, tmp_path):
    code, body = _http(cluster, "/api/v1/namespaces/my-app/pods", "nobody-knows-this")
    assert (code, body) == (401, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                  "message": "Unauthorized", "reason": "Unauthorized", "code": 401})
    assert _http(cluster, "/version", None)[0] == 200  # system:public-info-viewer
    code, body = _http(cluster, "/api", None)
    assert (code, body["message"]) == (403, 'forbidden: User "system:anonymous" cannot get path "/api"')
    config = yaml.safe_load(cluster.write_kubeconfig(tmp_path / "kc").read_text())
    config["users"][0]["user"]["token"] = "wrong"
    (tmp_path / "kc").write_text(yaml.safe_dump(config))
    result = subprocess.run(["kubectl", "get", "pods"], capture_output=True, text=True, timeout=60,
                            env=dict(os.environ, KUBECONFIG=str(tmp_path / "kc"), HOME=str(tmp_path)))
    assert result.returncode == 1
    # kubectl 1.32's wording for a 401 (client-go's message for StatusReasonUnauthorized).
    assert result.stderr.strip().splitlines()[-1] == (
        "error: You must be logged in to the server (the server has asked for the client to provide credentials)")


def test_get_of_several_kinds_fails_per_kind(cluster, kubectl):
    """`kubectl get a,b,c` where some kinds are forbidden: kubectl prints what it could read on
    stdout, one Forbidden line per refused kind on stderr, and exits 1 (as against a real server)."""
    cluster.load(binding("dev-view", "my-app", "view", "dev"))
    result = kubectl("get", "deployments,nodes,services,secrets", "-n", "my-app", "--context", "dev")
    assert result.returncode == 1
    assert result.stdout.splitlines()[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert "deployment.apps/web" in result.stdout and "service/web" in result.stdout
    assert result.stderr.splitlines() == [
        'Error from server (Forbidden): nodes is forbidden: User "dev" cannot list resource "nodes" in API group "" '
        "at the cluster scope",
        'Error from server (Forbidden): secrets is forbidden: User "dev" cannot list resource "secrets" in API group '
        '"" in the namespace "my-app"',
    ]
    as_json = kubectl("get", "deployments,nodes,services,secrets", "-n", "my-app", "--context", "dev", "-o", "json")
    assert as_json.returncode == 1 and as_json.stderr == result.stderr
    doc = json.loads(as_json.stdout)  # a complete List of what was readable
    assert [(i["kind"], i["metadata"]["name"]) for i in doc["items"]] == [("Deployment", "web"), ("Service", "web")]


# --------------------------------------------------------------------------- reviews and impersonation


def test_can_i_list_answers_from_the_same_rules(cluster, kubectl):
    cluster.load(binding("dev-view", "my-app", "view", "dev"))
    listing = kubectl("auth", "can-i", "--list", "-n", "my-app", "--context", "dev")
    assert listing.returncode == 0
    rows = {line.split()[0]: line for line in listing.stdout.splitlines()[1:]}
    assert "[get list watch]" in rows["pods"] and "[get list watch]" in rows["deployments.apps"]
    assert "secrets" not in rows
    assert "selfsubjectaccessreviews.authorization.k8s.io" in rows  # system:basic-user
    assert any("/apis/*" in line for line in rows.values())  # system:discovery's URLs
    elsewhere = kubectl("auth", "can-i", "--list", "-n", "other", "--context", "dev")
    assert "pods" not in {line.split()[0] for line in elsewhere.stdout.splitlines()[1:]}


def test_impersonation_needs_the_impersonate_verb(cluster, kubectl):
    cluster.load(binding("dev-view", "my-app", "view", "dev"))
    # The admin may impersonate anyone, and then has exactly their rights.
    assert kubectl.can_i("list", "pods", "-n", "my-app", "--as", "dev") == "yes"
    assert kubectl.can_i("list", "secrets", "-n", "my-app", "--as", "dev") == "no"
    refused = kubectl("get", "pods", "-n", "my-app", "--as", "alice", "--context", "dev")
    assert refused.stderr == ('Error from server (Forbidden): users "alice" is forbidden: User "dev" cannot '
                              'impersonate resource "users" in API group "" at the cluster scope\n')
    cluster.load([
        {"apiVersion": RBAC, "kind": "ClusterRole", "metadata": {"name": "impersonate-alice"},
         "rules": [{"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"], "resourceNames": ["alice"]}]},
        binding("dev-impersonates", None, "impersonate-alice", "dev"),
        binding("alice-edit", "my-app", "edit", "alice"),
    ])
    assert kubectl.can_i("list", "secrets", "-n", "my-app", "--as", "alice", "--context", "dev") == "yes"
    group = kubectl("get", "pods", "-n", "my-app", "--as", "alice", "--as-group", "admins", "--context", "dev")
    assert group.stderr == ('Error from server (Forbidden): groups "admins" is forbidden: User "dev" cannot '
                            'impersonate resource "groups" in API group "" at the cluster scope\n')
    whoami = kubectl("auth", "whoami", "--as", "alice", "--context", "dev", "-o", "json")
    assert json.loads(whoami.stdout)["status"]["userInfo"] == {"username": "alice",
                                                               "groups": ["system:authenticated"]}


def test_services_proxy_needs_get_on_services_proxy(cluster):
    cluster.add_user("viewer")
    cluster.load([binding("dev-edit", "my-app", "edit", "dev"), binding("viewer", "my-app", "view", "viewer")])
    path = "/api/v1/namespaces/my-app/services/web:80/proxy/metrics"
    code, body = _http(cluster, path, cluster.token("viewer"))
    assert (code, body["message"]) == (403, 'services "web:80" is forbidden: User "viewer" cannot get resource '
                                            '"services/proxy" in API group "" in the namespace "my-app"')
    assert _http(cluster, path, cluster.token("dev"))[0] != 403  # edit holds services/proxy


# --------------------------------------------------------------------------- RBAC objects through the API


def test_aggregation_follows_labelled_roles(cluster, kubectl):
    """Istio's kinds are in no built-in role until someone aggregates them, as on a real cluster."""
    cluster.load(binding("dev-view", "my-app", "view", "dev"))
    assert kubectl.can_i("list", "virtualservices.networking.istio.io", "-n", "my-app", "--context", "dev") == "no"
    role = {"apiVersion": RBAC, "kind": "ClusterRole",
            "metadata": {"name": "istio-view", "labels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}},
            "rules": [{"apiGroups": ["networking.istio.io"], "resources": ["*"], "verbs": ["get", "list", "watch"]}]}
    assert kubectl("apply", "-f", "-", input=json.dumps(role)).returncode == 0
    assert kubectl.can_i("list", "virtualservices.networking.istio.io", "-n", "my-app", "--context", "dev") == "yes"
    view = json.loads(kubectl("get", "clusterrole", "view", "-o", "json").stdout)
    assert role["rules"][0] in view["rules"]
    admin = json.loads(kubectl("get", "clusterrole", "admin", "-o", "json").stdout)
    assert role["rules"][0] in admin["rules"]  # view -> edit -> admin
    assert kubectl("delete", "clusterrole", "istio-view").returncode == 0
    assert kubectl.can_i("list", "virtualservices.networking.istio.io", "-n", "my-app", "--context", "dev") == "no"


def test_roles_created_with_kubectl_and_escalation_prevented(cluster, kubectl):
    cluster.load(binding("dev-admin", "my-app", "admin", "dev"))
    made = kubectl("create", "role", "pod-reader", "--verb=get,list", "--resource=pods", "-n", "my-app",
                   "--context", "dev")
    assert made.returncode == 0, made.stderr
    assert kubectl("create", "rolebinding", "reader", "--role=pod-reader", "--user=bob", "-n", "my-app",
                   "--context", "dev").returncode == 0
    cluster.add_user("bob")
    assert kubectl.can_i("list", "pods", "-n", "my-app", "--context", "bob") == "yes"
    assert kubectl.can_i("list", "services", "-n", "my-app", "--context", "bob") == "no"
    wide = kubectl("create", "role", "node-reader", "--verb=get", "--resource=nodes", "-n", "my-app", "--context", "dev")
    assert wide.returncode == 1
    assert wide.stderr == (
        'Error from server (Forbidden): roles.rbac.authorization.k8s.io "node-reader" is forbidden: user "dev" '
        '(groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held:\n'
        '{APIGroups:[""], Resources:["nodes"], Verbs:["get"]}\n')
    bind = kubectl("create", "rolebinding", "too-much", "--clusterrole=cluster-admin", "--user=bob", "-n", "my-app",
                   "--context", "dev")
    assert bind.returncode == 1 and "is attempting to grant RBAC permissions not currently held" in bind.stderr
    assert kubectl("create", "rolebinding", "edit-bob", "--clusterrole=edit", "--user=bob", "-n", "my-app",
                   "--context", "dev").returncode == 0  # admin holds everything edit has
    changed = kubectl("patch", "rolebinding", "edit-bob", "-n", "my-app", "--type=merge",
                      "-p", '{"roleRef":{"name":"view"}}')
    assert changed.returncode == 1 and "cannot change roleRef" in changed.stderr
    invalid = kubectl("create", "-f", "-", input=json.dumps({
        "apiVersion": RBAC, "kind": "Role", "metadata": {"name": "bad", "namespace": "my-app"},
        "rules": [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]}))
    assert "namespaced rules cannot apply to non-resource URLs" in invalid.stderr


def test_service_account_subjects(cluster, kubectl):
    sa = "system:serviceaccount:my-app:deployer"
    cluster.add_user(sa)
    cluster.load({"apiVersion": RBAC, "kind": "RoleBinding", "metadata": {"name": "deployer", "namespace": "my-app"},
                  "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
                  "subjects": [{"kind": "ServiceAccount", "name": "deployer"}]})  # namespace defaults to my-app
    assert kubectl.can_i("create", "deployments.apps", "-n", "my-app", "--as", sa) == "yes"
    assert kubectl.can_i("create", "deployments.apps", "-n", "other", "--as", sa) == "no"
    whoami = json.loads(kubectl("auth", "whoami", "--context", sa, "-o", "json").stdout)
    assert whoami["status"]["userInfo"]["groups"] == [
        "system:serviceaccounts", "system:serviceaccounts:my-app", "system:authenticated"]


def test_admin_keeps_every_right_without_any_binding(cluster, kubectl):
    """system:masters is allowed before RBAC is asked, as kube-apiserver's privileged-group authorizer."""
    assert kubectl("delete", "clusterrolebinding", "cluster-admin").returncode == 0
    assert kubectl("get", "nodes").returncode == 0
    assert kubectl.can_i("*", "*") == "yes"


def test_fault_switch_forbid_names_the_requesting_user(cluster, kubectl):
    cluster.load(binding("dev-edit", "my-app", "edit", "dev"))
    cluster.forbid("list", "services", namespace="my-app")
    result = kubectl("get", "services", "-n", "my-app", "--context", "dev")
    assert result.stderr == ('Error from server (Forbidden): services is forbidden: User "dev" cannot list resource '
                             '"services" in API group "" in the namespace "my-app"\n')
    assert kubectl.can_i("list", "services", "-n", "my-app", "--context", "dev") == "no"


def test_authorizer_caches_per_user_until_rbac_changes(cluster):
    dev = Identity("dev", ("system:authenticated",))
    authorizer = cluster.core.authorizer
    first = authorizer.grants(dev, "my-app")
    assert authorizer.grants(dev, "my-app") is first  # one lookup per request, no rebuild
    cluster.load(binding("dev-edit", "my-app", "edit", "dev"))
    assert authorizer.grants(dev, "my-app") is not first
    assert any("RoleBinding \"dev-edit/my-app\" of ClusterRole \"edit\"" in g.source
               for g in authorizer.grants(dev, "my-app"))


def test_python_m_tests_cluster_adds_users_and_contexts(tmp_path):
    kc = tmp_path / "kc"
    rb = tmp_path / "rb.yaml"
    rb.write_text(yaml.safe_dump_all([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "my-app"}},
                                      binding("dev-edit", "my-app", "edit", "dev")]))
    proc = subprocess.Popen([sys.executable, "-m", "tests.cluster", "--kubeconfig", str(kc), "--user", "dev",
                             "--user", "ops", "--load", str(rb)], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().startswith("https://127.0.0.1:")
        env = dict(os.environ, KUBECONFIG=str(kc), HOME=str(tmp_path))

        def can_i(*args: str) -> str:
            return subprocess.run(["kubectl", "auth", "can-i", *args], capture_output=True, text=True, env=env,
                                  timeout=60).stdout.strip()

        contexts = subprocess.run(["kubectl", "config", "get-contexts", "-o", "name"], capture_output=True,
                                  text=True, env=env, timeout=60).stdout.split()
        assert sorted(contexts) == ["dev", "ops", "test"]
        assert can_i("get", "pods", "-n", "my-app", "--context", "dev") == "yes"
        assert can_i("get", "pods", "-n", "my-app", "--context", "ops") == "no"
        assert can_i("list", "namespaces") == "yes"
    finally:
        proc.terminate()
        proc.wait(timeout=10)

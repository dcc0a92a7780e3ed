"""Read objects from an API server named by a kubeconfig (its current context): plain HTTPS/HTTP
GETs with the context's bearer token or client certificate, nothing else."""

from __future__ import annotations

import base64
import json
import ssl
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import yaml


class ApiReader:
    def __init__(self, kubeconfig: str | Path, context: str | None = None, timeout: float = 5.0) -> None:
        config = yaml.safe_load(Path(kubeconfig).read_text()) or {}
        name = context or config.get("current-context")
        ctx = next((c["context"] for c in config.get("contexts") or [] if c.get("name") == name), None)
        if ctx is None:
            raise ValueError(f"{kubeconfig}: context {name!r} not found")
        cluster = next(c["cluster"] for c in config.get("clusters") or [] if c.get("name") == ctx.get("cluster"))
        user = next((u.get("user") or {} for u in config.get("users") or [] if u.get("name") == ctx.get("user")), {})
        self.server = cluster["server"].rstrip("/")
        self.timeout = timeout
        self.headers = {"Accept": "application/json", "User-Agent": "tests.traffic"}
        if user.get("token"):
            self.headers["Authorization"] = f"Bearer {user['token']}"
        self.context = self._ssl(cluster, user) if self.server.startswith("https") else None
        self._istio_version: str | None = None

    def _ssl(self, cluster: dict, user: dict) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if cluster.get("insecure-skip-tls-verify"):
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif cluster.get("certificate-authority-data"):
            context.load_verify_locations(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
        elif cluster.get("certificate-authority"):
            context.load_verify_locations(cluster["certificate-authority"])
        if user.get("client-certificate-data") and user.get("client-key-data"):
            with tempfile.TemporaryDirectory() as tmp:
                cert, key = Path(tmp, "c.pem"), Path(tmp, "k.pem")
                cert.write_bytes(base64.b64decode(user["client-certificate-data"]))
                key.write_bytes(base64.b64decode(user["client-key-data"]))
                context.load_cert_chain(cert, key)
        elif user.get("client-certificate") and user.get("client-key"):
            context.load_cert_chain(user["client-certificate"], user["client-key"])
        return context

    def get(self, path: str) -> dict:
        request = urllib.request.Request(self.server + path, headers=self.headers)
        with urllib.request.urlopen(request, timeout=self.timeout, context=self.context) as answer:
            return json.load(answer)

    def items(self, path: str) -> list[dict]:
        """The items of a list; [] when the resource is not served (404)."""
        try:
            return self.get(path).get("items") or []
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return []
            raise

    def istio_version(self) -> str | None:
        if self._istio_version is None:
            try:
                group = self.get("/apis/networking.istio.io")
            except urllib.error.HTTPError:
                return None
            self._istio_version = (group.get("preferredVersion") or {}).get("version") or "v1"
        return self._istio_version

    def objects(self) -> dict[str, list[dict]]:
        """Everything the route table needs, across all namespaces."""
        version = self.istio_version()
        istio = f"/apis/networking.istio.io/{version}" if version else None
        return {
            "services": self.items("/api/v1/services"),
            "pods": self.items("/api/v1/pods"),
            "replicasets": self.items("/apis/apps/v1/replicasets"),
            "virtual_services": self.items(f"{istio}/virtualservices") if istio else [],
            "destination_rules": self.items(f"{istio}/destinationrules") if istio else [],
        }

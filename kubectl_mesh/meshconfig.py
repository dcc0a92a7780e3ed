"""Istio's mesh config and sidecar injector config, as the checks need them.

Two ConfigMaps in Istio's root namespace say what the control plane does by
default: `istio` (key `mesh`, the MeshConfig YAML: default exportTo of
Services, VirtualServices and DestinationRules, the proxy image type) and
`istio-sidecar-injector` (key `values`, JSON: the proxy image injected now and
`sidecarInjectorWebhook.enableNamespacesByDefault`), one of each per revision
(`istio-REV`, `istio-sidecar-injector-REV`).

Offline they come from the manifests (or `--mesh-config FILE`); online from one
read of the root namespace's ConfigMaps, which a namespace-scoped user often
may not make: then the settings are *unknown* (`known` is False, `unknown_why`
says why) and a check that needs them says so rather than guessing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from kubectl_mesh import errors
from kubectl_mesh.mesh import meta, name_of, namespace_of

ROOT_NAMESPACE = "istio-system"
MESH_CONFIGMAP = "istio"
INJECTOR_CONFIGMAP = "istio-sidecar-injector"
DEFAULT_REVISION = "default"
ALL = "*"


def revision_of(configmap_name: str, base: str) -> str | None:
    """"istio-sidecar-injector-canary" -> "canary"; the base name -> "default"."""
    if configmap_name == base:
        return DEFAULT_REVISION
    if configmap_name.startswith(base + "-"):
        return configmap_name[len(base) + 1:]
    return None


def injector_configmap_name(revision: str | None) -> str:
    """Istio's GetInjectorConfigMapName: no revision or "default" is the base name."""
    if not revision or revision == DEFAULT_REVISION:
        return INJECTOR_CONFIGMAP
    return f"{INJECTOR_CONFIGMAP}-{revision}"


@dataclass(frozen=True)
class Injector:
    """One revision's sidecar injector ConfigMap."""

    revision: str
    source: str  # "ConfigMap istio-system/istio-sidecar-injector"
    values: dict

    @property
    def enable_namespaces_by_default(self) -> bool:
        webhook = self.values.get("sidecarInjectorWebhook")
        return isinstance(webhook, dict) and webhook.get("enableNamespacesByDefault") is True

    @property
    def proxy_image(self) -> str | None:
        """The image the injector gives istio-proxy now: global.proxy.image when it is a
        full reference (contains "/"), else global.hub/global.proxy.image:global.tag, as
        the injection template builds it. None when the values do not say."""
        glob = self.values.get("global")
        if not isinstance(glob, dict):
            return None
        proxy = glob.get("proxy") if isinstance(glob.get("proxy"), dict) else {}
        image = proxy.get("image")
        if not isinstance(image, str) or not image:
            return None
        if "/" in image:
            return image
        hub, tag = glob.get("hub"), glob.get("tag")
        if not hub or tag in (None, ""):
            return None
        return f"{hub}/{image}:{tag}"


@dataclass
class MeshSettings:
    known: bool = True
    unknown_why: str = ""
    mesh: dict = field(default_factory=dict)
    mesh_source: str | None = None
    injectors: dict[str, Injector] = field(default_factory=dict)

    # -- exportTo defaults (MeshConfig defaultServiceExportTo & co; Istio's default "*")
    def _export_default(self, key: str) -> list[str]:
        value = self.mesh.get(key)
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            return value
        return [ALL]

    @property
    def service_export_to(self) -> list[str]:
        return self._export_default("defaultServiceExportTo")

    @property
    def virtual_service_export_to(self) -> list[str]:
        return self._export_default("defaultVirtualServiceExportTo")

    @property
    def destination_rule_export_to(self) -> list[str]:
        return self._export_default("defaultDestinationRuleExportTo")

    @property
    def image_type(self) -> str:
        """defaultConfig.image.imageType ("" for the default image)."""
        default = self.mesh.get("defaultConfig")
        image = default.get("image") if isinstance(default, dict) else None
        kind = image.get("imageType") if isinstance(image, dict) else None
        return "" if not isinstance(kind, str) or kind == "default" else kind

    def injector(self, revision: str | None) -> Injector | None:
        return self.injectors.get(revision or DEFAULT_REVISION)

    def enables_namespaces_by_default(self) -> bool | None:
        """Does the default injector inject namespaces that carry no label? None: unknown."""
        if not self.known:
            return None
        injector = self.injector(DEFAULT_REVISION)
        return injector.enable_namespaces_by_default if injector else False


def _parse_yaml(text: str):
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return None


def from_configmaps(configmaps: list[dict], *, root_namespace: str = ROOT_NAMESPACE,
                    mesh: dict | None = None, mesh_source: str | None = None) -> MeshSettings:
    """The settings that the ConfigMaps (of any namespace, the root namespace's first,
    as istioctl analyze finds them by name) and an explicit mesh config give."""
    settings = MeshSettings(mesh=dict(mesh or {}), mesh_source=mesh_source)
    ordered = sorted(configmaps, key=lambda cm: namespace_of(cm) != root_namespace)
    for cm in ordered:
        name = name_of(cm)
        data = cm.get("data") if isinstance(cm.get("data"), dict) else {}
        where = f"ConfigMap {namespace_of(cm)}/{name}"
        injector_revision = revision_of(name, INJECTOR_CONFIGMAP)
        if injector_revision is not None:
            if injector_revision in settings.injectors:
                continue
            try:
                values = json.loads(data.get("values") or "{}")
            except (TypeError, ValueError):
                values = {}
            settings.injectors[injector_revision] = Injector(injector_revision, where,
                                                            values if isinstance(values, dict) else {})
            continue
        if mesh is None and settings.mesh_source is None and revision_of(name, MESH_CONFIGMAP) == DEFAULT_REVISION:
            parsed = _parse_yaml(data.get("mesh") or "")
            if isinstance(parsed, dict):
                settings.mesh, settings.mesh_source = parsed, where
    return settings


def from_snapshot(snapshot, mesh: dict | None = None, mesh_source: str | None = None) -> MeshSettings:
    return from_configmaps(snapshot.of_kind("ConfigMap"), root_namespace=snapshot.root_namespace,
                           mesh=mesh, mesh_source=mesh_source)


def unknown(why: str) -> MeshSettings:
    return MeshSettings(known=False, unknown_why=why)


def read(runner, root_namespace: str = ROOT_NAMESPACE, *, mesh: dict | None = None,
         mesh_source: str | None = None) -> MeshSettings:
    """One read of the root namespace's ConfigMaps. A user who may not read them (or a
    cluster without that namespace) gets unknown settings, never an error."""
    try:
        document = runner.kubectl_json("get", "configmaps", "-n", root_namespace)
    except errors.Forbidden:
        settings = unknown(f"cannot list configmaps in namespace {root_namespace} (forbidden): "
                           "Istio's mesh and injector settings are unknown")
    except errors.NotFound:
        settings = unknown(f"namespace {root_namespace} not found: Istio's mesh and injector settings are unknown")
    else:
        items = [i for i in (document.get("items") or []) if isinstance(i, dict)
                 and isinstance(meta(i).get("name"), str) and meta(i)["name"].startswith(MESH_CONFIGMAP)]
        return from_configmaps(items, root_namespace=root_namespace, mesh=mesh, mesh_source=mesh_source)
    if mesh is not None:
        settings.mesh, settings.mesh_source = dict(mesh), mesh_source
    return settings


def load_file(path: str) -> tuple[dict, str]:
    """`--mesh-config FILE`: a MeshConfig YAML (as istioctl analyze --meshConfigFile
    takes it) or the `istio` ConfigMap holding one under data.mesh."""
    from pathlib import Path

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise errors.UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise errors.UsageError(f"{path}: not a text file (UTF-8 expected)") from None
    import yaml

    try:
        parsed = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise errors.UsageError(f"{path}: invalid YAML: {str(exc).splitlines()[0]}") from None
    if parsed is None:
        parsed = {}
    if not isinstance(parsed, dict):
        raise errors.UsageError(f"{path}: not a mesh config (a YAML mapping, or the istio ConfigMap)")
    if parsed.get("kind") == "ConfigMap":
        inner = _parse_yaml(((parsed.get("data") or {}).get("mesh")) or "")
        if not isinstance(inner, dict):
            raise errors.UsageError(f"{path}: ConfigMap has no data.mesh mapping")
        return inner, f"{path} (ConfigMap data.mesh)"
    return parsed, path

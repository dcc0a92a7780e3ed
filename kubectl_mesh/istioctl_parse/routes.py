"""``istioctl proxy-config routes``: its table read into rows, and the same rows made from a config dump.

Facts about the format (from istioctl/pkg/writer/envoy/configdump): each row
of the routes table carries its RouteConfiguration's name; a blank NAME is an
unnamed (static) RouteConfiguration, not a continuation. :func:`parse_routes`
carries the name down by default all the same (the project's contract); pass
``carry_name=False`` to get what istioctl meant.
"""

from __future__ import annotations

import json

from kubectl_mesh.istioctl_parse._common import _lazy, _text_lines

_ROUTE_COLUMNS = (
    ("NAME", "name"),
    ("VHOST NAME", "vhostName"),
    ("DOMAINS", "domains"),
    ("MATCH", "match"),
    ("VIRTUAL SERVICE", "virtualService"),
)
_ROUTES_HEADER = _lazy(
    r"^\s*NAME(\s+|\t)(?:VHOST NAME(?:\s+|\t))?DOMAINS(?:\s+|\t)MATCH(?:\s+|\t)VIRTUAL SERVICE\s*$"
)
_TYPE_PREFIX = "route/"  # `istioctl proxy-config all` prefixes each name with its type


def _column_starts(header: str) -> list[tuple[int, str]]:
    """(start, key) of each column present in the header, left to right."""
    starts = []
    position = 0
    for label, key in _ROUTE_COLUMNS:
        at = header.find(label, position)
        if at < 0:
            continue
        starts.append((at, key))
        position = at + len(label)
    return starts


def _cut_row(line: str, starts: list[tuple[int, str]]) -> dict:
    """Cells of a tabwriter row by the header's column positions.

    tabwriter pads every cell to its column width plus five spaces, so a
    column boundary falls after a space. If a row is misaligned (a cell runs
    over the boundary), the boundary moves past the end of that word.
    """
    bounds = []
    previous = 0
    for start, _key in starts:
        at = max(start, previous)
        if 0 < at < len(line) and line[at - 1] != " " and line[at] != " ":
            while at < len(line) and line[at] != " ":
                at += 1
            while at < len(line) and line[at] == " ":
                at += 1
        bounds.append(at)
        previous = at
    row = {key: "" for _label, key in _ROUTE_COLUMNS}
    for index, (_start, key) in enumerate(starts):
        end = bounds[index + 1] if index + 1 < len(bounds) else len(line)
        row[key] = line[bounds[index]:end].strip()
    return row


def parse_routes(text: str, *, carry_name: bool = True) -> list[dict]:
    """Parse the ``istioctl proxy-config routes`` table into rows.

    Each row is ``{"name", "vhostName", "domains", "match", "virtualService"}``
    with blank cells as "". Columns are cut at the header's column positions,
    so cells holding spaces (``a.svc, b.svc + 2 more...``) stay whole. Every
    route table in the text is read (``proxy-config all`` too, whose
    ``route/`` name prefix is dropped); other tables are ignored. An older
    header without VHOST NAME gives vhostName "".

    With ``carry_name`` (the default) a blank NAME takes the name of the row
    above. istioctl itself prints each row's RouteConfiguration name, so a
    blank NAME really is an unnamed (static) RouteConfiguration; pass
    ``carry_name=False`` to keep it blank.
    """
    lines = _text_lines(text)
    rows: list[dict] = []
    index = 0
    while index < len(lines):
        header = lines[index]
        index += 1
        if not _ROUTES_HEADER.match(header):
            continue
        tabbed = "\t" in header
        starts = _column_starts(header)
        if not starts or starts[0][1] != "name":
            continue
        keys = [key for _start, key in starts]
        previous_name = ""
        while index < len(lines) and lines[index].strip() and not _ROUTES_HEADER.match(lines[index]):
            line = lines[index]
            index += 1
            if tabbed:
                cells = [cell.strip() for cell in line.split("\t")]
                row = {key: "" for _label, key in _ROUTE_COLUMNS}
                row.update({key: cell for key, cell in zip(keys, cells, strict=False)})
            else:
                row = _cut_row(line, starts)
            name = row["name"]
            if name.startswith(_TYPE_PREFIX):
                name = name[len(_TYPE_PREFIX):]
            elif not name and carry_name:
                name = previous_name
            row["name"] = name
            previous_name = name
            rows.append(row)
    return rows


def _field(obj, *names, default=None):
    """A field of a proto-JSON dict by its snake_case or camelCase name."""
    if not isinstance(obj, dict):
        return default
    for name in names:
        if name in obj and obj[name] is not None:
            return obj[name]
    return default


def _list(value) -> list:
    return value if isinstance(value, list) else []


def _is_route_configuration(obj: dict) -> bool:
    type_url = str(obj.get("@type", ""))
    if type_url.endswith("RouteConfiguration"):
        return True
    return "virtual_hosts" in obj or "virtualHosts" in obj


def _route_configurations(doc) -> list[dict]:
    """RouteConfigurations in a config dump, in the order istioctl prints them."""
    if isinstance(doc, list):
        found = []
        for item in doc:
            found.extend(_route_configurations(item))
        return found
    if not isinstance(doc, dict):
        return []
    configs = doc.get("configs")
    if isinstance(configs, dict):
        configs = list(configs.values())
    if isinstance(configs, list):
        found = []
        for config in configs:
            if isinstance(config, dict) and (
                str(config.get("@type", "")).endswith("RoutesConfigDump")
                or _has_route_dump_keys(config)
            ):
                found.extend(_route_configurations(config))
        return found
    if _has_route_dump_keys(doc):
        # istioctl lists the dynamic RouteConfigurations first, then the static ones.
        found = []
        for key in (("dynamic_route_configs", "dynamicRouteConfigs"),
                    ("static_route_configs", "staticRouteConfigs")):
            for entry in _list(_field(doc, *key)):
                route_config = _field(entry, "route_config", "routeConfig")
                if isinstance(route_config, dict):
                    found.append(route_config)
        return found
    wrapped = _field(doc, "route_config", "routeConfig")
    if isinstance(wrapped, dict):
        return [wrapped]
    if _is_route_configuration(doc):
        return [doc]
    return []


def _has_route_dump_keys(obj: dict) -> bool:
    return any(key in obj for key in ("dynamic_route_configs", "dynamicRouteConfigs",
                                      "static_route_configs", "staticRouteConfigs"))


_INTEGER = _lazy(r"^[+-]?\d+$")


def _istioctl_order(route_configs: list[dict]) -> list[dict]:
    """istioctl sorts with "both names numeric and i < j"; any other pair is "not less".

    Go's sort (insertion sort below 13 elements) then never moves a config
    past a non-numeric name: each run of numeric names is sorted, the rest
    stay put. That is exact for small dumps and close for large ones.
    """
    ordered: list[dict] = []
    run: list[tuple[int, int, dict]] = []
    for position, config in enumerate(route_configs):
        name = str(_field(config, "name", default="") or "")
        if _INTEGER.match(name):
            run.append((int(name), position, config))
            continue
        ordered.extend(item for _n, _p, item in sorted(run, key=lambda t: (t[0], t[1])))
        run = []
        ordered.append(config)
    ordered.extend(item for _n, _p, item in sorted(run, key=lambda t: (t[0], t[1])))
    return ordered


def _describe_domains(domains) -> str:
    """istioctl's DOMAINS cell: the port-less domains, shortened, at most two shown."""
    if not isinstance(domains, list):
        return ""
    domains = [str(d) for d in domains]
    if not domains:
        return ""
    if len(domains) == 1:
        return domains[0]
    without_port = []
    for domain in domains:
        if ":" not in domain:
            without_port.append(domain)
        elif domain.count(":") > 2 and domain.endswith("]"):
            without_port.append(domain)  # a bare IPv6 address such as [fd00::1]
    unique = set(without_port)
    redundant = set()
    for domain in without_port:
        for suffix in (".svc.cluster.local", ".svc"):
            if domain.endswith(suffix) and domain[: -len(suffix)] in unique:
                redundant.add(domain)
    shown = [d for d in without_port if d not in redundant]
    if len(shown) > 2:
        return f"{', '.join(shown[:2])} + {len(shown) - 2} more..."
    return ", ".join(shown)


def _describe_match(match) -> str:
    if not isinstance(match, dict):
        return ""
    conditions = []
    prefix = _field(match, "prefix")
    if prefix:
        conditions.append(f"{prefix}*")
    separated = _field(match, "path_separated_prefix", "pathSeparatedPrefix")
    if separated:
        conditions.append(f"PathPrefix:{separated}")
    path = _field(match, "path")
    if path:
        conditions.append(str(path))
    regex = _field(match, "safe_regex", "safeRegex")
    if regex:
        pattern = _field(regex, "regex") if isinstance(regex, dict) else regex
        conditions.append(f"regex {pattern}")
    return " ".join(str(c) for c in conditions)


_VS_CONFIG = _lazy(
    r"^/apis/networking(?:\.istio\.io)?/v1(?:alpha3|beta1)?/namespaces/([^/]+)/virtual-service/([^/]+)$"
)


def _describe_management(metadata) -> str:
    filter_metadata = _field(metadata, "filter_metadata", "filterMetadata")
    istio = _field(filter_metadata, "istio")
    config = _field(istio, "config")
    if config is None:
        return ""
    m = _VS_CONFIG.match(str(config))
    if m:
        return f"{m.group(2)}.{m.group(1)}"
    return "<unknown>"


def _is_passthrough(route: dict) -> bool:
    action = _field(route, "route")
    return isinstance(action, dict) and action.get("cluster") == "PassthroughCluster"


def routes_from_config_dump(doc) -> list[dict]:
    """The rows ``istioctl proxy-config routes`` would print for a config dump.

    ``doc`` is an Envoy ``/config_dump`` document (``{"configs": [...]}``),
    one RoutesConfigDump, the RouteConfiguration list ``proxy-config routes
    -o json`` prints, or one RouteConfiguration (a JSON string of any of
    these is accepted too). Rows are ``{"name", "vhostName", "domains",
    "match", "virtualService"}``, with istioctl's rendering: ``/p*`` for a
    prefix, ``PathPrefix:/p`` for a path-separated prefix, ``regex R``;
    ``name.namespace`` of the VirtualService; a virtual host without routes
    gives one row ``/*`` / ``404``; routes to PassthroughCluster are left out.
    """
    if isinstance(doc, (str, bytes, bytearray)):
        try:
            doc = json.loads(doc)
        except ValueError:
            return []
    try:
        route_configs = _route_configurations(doc)
    except RecursionError:  # absurdly nested lists
        return []
    rows = []
    for config in _istioctl_order(route_configs):
        name = str(_field(config, "name", default="") or "")
        for vhost in _list(_field(config, "virtual_hosts", "virtualHosts")):
            if not isinstance(vhost, dict):
                continue
            vhost_name = str(_field(vhost, "name", default="") or "")
            domains = _describe_domains(_field(vhost, "domains", default=[]))
            routes = _list(_field(vhost, "routes"))
            for route in routes:
                if not isinstance(route, dict) or _is_passthrough(route):
                    continue
                rows.append({
                    "name": name,
                    "vhostName": vhost_name,
                    "domains": domains,
                    "match": _describe_match(_field(route, "match")),
                    "virtualService": _describe_management(_field(route, "metadata")),
                })
            if not routes:
                rows.append({"name": name, "vhostName": vhost_name, "domains": domains,
                             "match": "/*", "virtualService": "404"})
    return rows

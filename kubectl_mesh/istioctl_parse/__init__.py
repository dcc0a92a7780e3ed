"""Parsers for istioctl's human-readable output. Pure functions, stdlib only.

* :func:`parse_describe` reads ``istioctl x describe pod`` and
  ``istioctl x describe service`` text.
* :func:`parse_routes` reads the ``istioctl proxy-config routes`` table (and
  the route table inside ``istioctl proxy-config all``).
* :func:`routes_from_config_dump` turns an Envoy config dump, or the
  RouteConfiguration list that ``proxy-config routes -o json`` prints, into
  the same rows istioctl would print.
* :func:`describe_warnings` lists the warnings of a parsed describe with the
  pod, service and Istio object each one concerns.

Every function takes whatever it is given: unknown or malformed input gives
empty structures, never an exception. Results are plain JSON-serialisable
dicts and lists with camelCase keys.

Modules: ``describe`` (the describe parser, :func:`parse_describe`,
:func:`describe_warnings`), ``describe_traffic`` (its DestinationRule and
VirtualService lines), ``describe_patterns`` (describe's line patterns, names
and warning codes, with the facts about its format), ``routes`` (the routes
table and the config-dump path), ``_common`` (lazily compiled regexes, input
lines, JSON round trip).
"""

from __future__ import annotations

from kubectl_mesh.istioctl_parse.describe import describe_warnings, parse_describe
from kubectl_mesh.istioctl_parse.describe_patterns import WARNING_CODES
from kubectl_mesh.istioctl_parse.routes import parse_routes, routes_from_config_dump

__all__ = [
    "WARNING_CODES",
    "describe_warnings",
    "parse_describe",
    "parse_routes",
    "routes_from_config_dump",
]

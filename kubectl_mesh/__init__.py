"""kubectl mesh: the platform Istio guide as safe, idempotent, checked commands."""

__version__ = "0.1.0"

"""Exit codes of the contract and the typed errors that carry them.

Every failure a user can meet is one of these; the CLI prints its one-line
message and exits with its code, in every output mode.
"""

from __future__ import annotations

OK = 0
CHECK_FAILED = 1
USAGE = 2
REFUSED = 3
ENVIRONMENT = 4
INCONCLUSIVE = 5  # canary run: too little traffic to judge; nothing promoted
INTERRUPTED = 130


class MeshError(Exception):
    """Base of every error the CLI turns into a message and an exit code."""

    exit_code = CHECK_FAILED
    kind = "Error"

    def __init__(self, message: str, *, command: str | None = None):
        super().__init__(message)
        self.message = message
        self.command = command
        # The plan step of the write this error stopped, when it has one to show
        # (e.g. a write whose answer was lost, read again).
        self.step = None

    def __str__(self) -> str:
        return self.message

    def as_dict(self) -> dict:
        data = {"type": self.kind, "message": self.message, "exitCode": self.exit_code}
        if self.command:
            data["command"] = self.command
        return data


class UsageError(MeshError):
    """Bad input: invalid names, weights, durations, quantities."""

    exit_code = USAGE
    kind = "UsageError"


class Refused(MeshError):
    """A safety check refused the change; --force overrides."""

    exit_code = REFUSED
    kind = "Refused"


class IstioMissing(Refused):
    """Istio is not installed (its CRDs are missing): a command that needs it refuses,
    as `enable` does, rather than writing objects nothing will read."""

    kind = "IstioNotInstalled"

    def __init__(self, what: str = "", *, command: str | None = None):
        super().__init__(
            "Istio is not installed on this cluster (its CRDs are missing)"
            + (f": {what}" if what else "")
            + "; Istio is an optional platform service: ask the platform team to deploy it",
            command=command)


class EnvironmentProblem(MeshError):
    """Base for problems with tools or the cluster rather than the input."""

    exit_code = ENVIRONMENT
    kind = "Environment"


class ToolMissing(EnvironmentProblem):
    kind = "ToolMissing"


class ClusterUnreachable(EnvironmentProblem):
    kind = "ClusterUnreachable"


class Forbidden(EnvironmentProblem):
    kind = "Forbidden"


class TimedOut(EnvironmentProblem):
    kind = "Timeout"


class ServerError(EnvironmentProblem):
    """The API server answered 5xx or dropped the connection."""

    kind = "ServerError"


class NotFound(MeshError):
    kind = "NotFound"


class Conflict(EnvironmentProblem):
    """409 from the API server: the object changed since it was read. The writer
    reads again and retries; one that escapes (it kept changing) is the
    environment's doing, not a failed check."""

    kind = "Conflict"


class AlreadyExists(MeshError):
    kind = "AlreadyExists"


class Invalid(MeshError):
    """The API server rejected what was sent (422 Invalid or 400 BadRequest)."""

    kind = "Invalid"


class ToolFailed(MeshError):
    """A tool failed in a way none of the other types describe."""

    kind = "ToolFailed"


class Interrupted(MeshError):
    """Ctrl-C (or SIGTERM) during a command that records where it stopped (canary run)."""

    exit_code = INTERRUPTED
    kind = "Interrupted"


class Inconclusive(MeshError):
    """canary run: too little traffic to judge the canary; nothing was promoted."""

    exit_code = INCONCLUSIVE
    kind = "Inconclusive"


class PrometheusFailed(EnvironmentProblem):
    """Prometheus could not be asked, or answered with an error."""

    kind = "PrometheusError"

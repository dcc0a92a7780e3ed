"""The one module that starts processes: kubectl and istioctl.

Commands are argument lists run through plumbum (never a shell). Every call
gets `--context`/`--kubeconfig` when the user gave them, an echo to stderr
under `-v`, and is recorded instead of run when it mutates and `--dry-run`
is on. Time is bounded for the whole command: the runner holds the deadline
that `--timeout` sets, each kubectl call is given `--request-timeout` from
what is left of it, and a tool still running at the deadline is killed with
its whole process group (an exec credential plugin kubectl started
included). Failures become the typed errors of `errors.py`, each with one
line that names the command that failed.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import TextIO

from kubectl_mesh import errors

DEFAULT_TIMEOUT = 60.0
# How long the pipes of a killed tool are drained before they are closed regardless.
_DRAIN = 2.0


@dataclass
class Runner:
    context: str | None = None
    kubeconfig: str | None = None
    # The bound on the whole command (--timeout), in seconds, and the monotonic
    # time it runs out (by default `timeout` from when the runner is made).
    timeout: float = DEFAULT_TIMEOUT
    deadline: float | None = None
    verbose: bool = False
    dry_run: bool = False
    log: TextIO = field(default_factory=lambda: sys.stderr)
    # Mutating calls not run because of --dry-run, as full argument lists.
    recorded: list[list[str]] = field(default_factory=list)

    def __post_init__(self):
        self._log_lock = threading.Lock()
        if self.deadline is None:
            self.deadline = time.monotonic() + self.timeout

    # -- the deadline -----------------------------------------------------------
    def left(self) -> float:
        """Seconds left of the command's --timeout."""
        return self.deadline - time.monotonic()

    def _bound(self, shown: str, cap: float | None) -> tuple[float, str]:
        """How long this call may take, and how to say so when it runs out."""
        left = self.left()
        if left <= 0:
            raise errors.TimedOut(f"--timeout {self.timeout:g}s ran out before: {shown}", command=shown)
        if cap is not None and cap < left:
            return cap, f"timed out after {cap:g}s"
        return left, f"timed out after {left:.3g}s, what was left of --timeout {self.timeout:g}s"

    # -- building command lines ---------------------------------------------
    def argv(self, tool: str, args: list[str] | tuple[str, ...]) -> list[str]:
        """The full argument list for `tool`, with the connection flags first."""
        flags: list[str] = []
        if self.kubeconfig:
            flags += ["--kubeconfig", self.kubeconfig]
        if self.context:
            flags += ["--context", self.context]
        return [tool, *flags, *[str(a) for a in args]]

    @staticmethod
    def _with_request_timeout(tool: str, argv: list[str], args: list[str], bound: float) -> list[str]:
        """kubectl gives up on each request by itself, by the time we would kill it
        (`kubectl config` makes no request)."""
        if tool != "kubectl" or args[:1] == ["config"]:
            return argv
        return [*argv, f"--request-timeout={max(1, math.floor(bound))}s"]

    # -- running ----------------------------------------------------------------
    def kubectl(
        self,
        *args: str,
        stdin: str | None = None,
        mutating: bool = False,
        timeout: float | None = None,
    ) -> str:
        """Run kubectl; return stdout; raise a typed error on failure."""
        return self._run("kubectl", list(args), stdin=stdin, mutating=mutating, timeout=timeout)

    def kubectl_json(self, *args: str, timeout: float | None = None, checks_only: bool = False) -> dict:
        """kubectl ... -o json, decoded (kubectl_mesh.decode; `checks_only` for read-only
        commands). kubectl writes into a temporary file rather than a pipe: a large
        cluster's JSON is hundreds of megabytes, which a pipe passes 64 KiB at a time
        (a second and a half of system time on 10,000 pods), and decode reads the
        file in large blocks."""
        from kubectl_mesh import decode

        with tempfile.TemporaryFile(prefix="kubectl-mesh-") as out:
            self._run("kubectl", [*args, "-o", "json"], stdin=None, mutating=False, timeout=timeout, stdout=out)
            out.seek(0)
            if not out.read(4096).strip():
                return {}
            out.seek(0)
            try:
                document = decode.decode_file(out, checks_only=checks_only)
            except (decode.DecodeError, UnicodeDecodeError) as exc:
                reason = exc.msg if isinstance(exc, decode.DecodeError) else "not UTF-8"
                raise errors.ToolFailed(
                    f"kubectl printed output that is not JSON ({reason}): {self.display('kubectl', list(args))}"
                ) from None
        return document if isinstance(document, dict) else {}

    def istioctl(self, *args: str, timeout: float | None = None) -> str:
        return self._run("istioctl", list(args), stdin=None, mutating=False, timeout=timeout)

    def kubectl_stream(self, *args: str, on_line, timeout: float | None = None) -> str:
        """Run kubectl, handing each line of its stdout to `on_line` as it comes
        (for `rollout status` progress); return all of stdout."""
        argv = self.argv("kubectl", list(args))
        shown = shlex.join(argv)
        if self.verbose:
            self.echo(f"+ {shown}")
        bound, said = self._bound(shown, timeout)
        process = self._start("kubectl", argv, shown, stdin=None)
        lines: list[str] = []

        def pump():
            for line in process.stdout:
                lines.append(line)
                on_line(line.rstrip("\n"))

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        try:
            process.wait(timeout=bound)
        except subprocess.TimeoutExpired:
            _kill(process)
            raise errors.TimedOut(f"{said}: {shown}", command=shown) from None
        except BaseException:
            _kill(process)
            raise
        reader.join(timeout=5)
        err = process.stderr.read() if process.stderr else ""
        out = "".join(lines)
        if process.returncode != 0:
            raise classify_failure("kubectl", shown, process.returncode, err or "", out)
        return out

    def display(self, tool: str, args: list[str]) -> str:
        return shlex.join(self.argv(tool, args))

    def echo(self, text: str) -> None:
        with self._log_lock:
            print(text, file=self.log, flush=True)

    def _run(self, tool, args, *, stdin, mutating, timeout, stdout=None) -> str:
        """Run the tool; its stdout is returned, or written to the file `stdout`."""
        argv = self.argv(tool, args)
        shown = shlex.join(argv)
        if mutating and self.dry_run:
            self.recorded.append(argv)
            if self.verbose:
                self.echo(f"+ {shown}  # dry run: not run")
            return ""
        if self.verbose:
            self.echo(f"+ {shown}")
        bound, said = self._bound(shown, timeout)
        process = self._start(tool, self._with_request_timeout(tool, argv, args, bound), shown, stdin=stdin,
                              stdout=stdout)
        try:
            out, err = process.communicate(input=stdin, timeout=bound)
        except subprocess.TimeoutExpired:
            _kill(process)
            raise errors.TimedOut(f"{said}: {shown}", command=shown) from None
        except BaseException:  # KeyboardInterrupt: do not leave the tool running
            _kill(process)
            raise
        if process.returncode != 0:
            if stdout is not None:  # what kubectl wrote into the file, for the error to carry
                stdout.seek(0)
                out = stdout.read().decode("utf-8", errors="replace")
            failure = classify_failure(tool, shown, process.returncode, err or "", out or "")
            # What kubectl printed beside the error: `get a,b,c` prints the kinds it could read
            # and one line per kind it could not (snapshot.read_cluster uses both).
            failure.output, failure.stderr = out or "", err or ""
            raise failure
        return out or ""

    @staticmethod
    def _start(tool: str, argv: list[str], shown: str, *, stdin: str | None, stdout=None):
        """The tool, started in a process group of its own, so that on a timeout the
        group is killed: kubectl and whatever it started (exec credential plugins).
        Its stdout is a pipe, or the file `stdout`."""
        try:
            return local_command(tool)[argv[1:]].popen(
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=stdout if stdout is not None else subprocess.PIPE,
                encoding="utf-8",
                env=dict(os.environ),
                process_group=0,
            )
        except FileNotFoundError:
            raise errors.ToolMissing(_missing_message(tool), command=shown) from None
        except PermissionError:
            raise errors.ToolMissing(f"{tool} found but not executable", command=shown) from None


def _kill(process) -> None:
    """Kill the tool's process group (it leads one of its own), then drain its pipes,
    closing them if something outside the group still holds them open."""
    pid = getattr(process, "pid", 0) or 0
    with contextlib.suppress(OSError):  # gone already
        if pid > 0 and os.getpgid(pid) == pid:
            os.killpg(pid, signal.SIGKILL)
        else:
            process.kill()
    try:
        process.communicate(timeout=_DRAIN)
    except (subprocess.TimeoutExpired, ValueError, OSError):
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=_DRAIN)


def local_command(tool: str):
    """plumbum's command for `tool`, plumbum imported on the first tool run: there is no
    cheaper way in (any of its modules imports all of plumbum: paths, SSH machines,
    urllib.request, colours), and --help, completion and diagnose -f run no tool."""
    from plumbum.machines.local import LocalCommand

    return LocalCommand(tool)


def _missing_message(tool: str) -> str:
    if tool == "istioctl":
        return "istioctl not found on PATH; install it (https://istio.io/latest/docs/setup/getting-started/#download)"
    return f"{tool} not found on PATH; install it (https://kubernetes.io/docs/tasks/tools/)"


# kubectl prints the API server's reason in parentheses: "Error from server (NotFound): ...".
_SERVER_REASON = re.compile(r"Error from server(?: \((?P<reason>\w+)\))?: (?P<message>.*)")
_UNREACHABLE = (
    "unable to connect to the server",
    "was refused - did you specify the right host or port",
    "connection refused",
    "no such host",
    "dial tcp",
    "i/o timeout",
    "tls: ",
    "x509: ",
    "you must be logged in to the server",
    "eof",
    "connection reset by peer",
    "server has asked for the client to provide credentials",
)
_CONFIG = (
    "no such file or directory",
    "context was not found",
    "does not exist",
    "no context exists",
    "invalid configuration",
    "error loading config file",
    "couldn't get current server api group list",
)
_REASONS: dict[str, type[errors.MeshError]] = {
    "NotFound": errors.NotFound,
    "Forbidden": errors.Forbidden,
    "Unauthorized": errors.ClusterUnreachable,
    "Conflict": errors.Conflict,
    "AlreadyExists": errors.AlreadyExists,
    "Invalid": errors.Invalid,
    "BadRequest": errors.Invalid,
    "InternalError": errors.ServerError,
    "ServiceUnavailable": errors.ServerError,
    "Timeout": errors.TimedOut,
    "ServerTimeout": errors.TimedOut,
    "TooManyRequests": errors.ServerError,
}


def first_error_line(err: str, out: str = "") -> str:
    """The line of kubectl's stderr that says what went wrong."""
    lines = [line.strip() for line in (err or out).splitlines() if line.strip()]
    for line in lines:
        if line.startswith(("Error from server", "error:", "Error:", "The ", "Unable to connect")):
            return line
    # kubectl's verbose klog lines start with E1234 or W1234; skip them when there is more.
    plain = [line for line in lines if not re.match(r"^[EWI]\d{4} ", line)]
    return (plain or lines or ["(no output)"])[0]


def classify_failure(tool: str, shown: str, code: int, err: str, out: str) -> errors.MeshError:
    """Turn a failed kubectl/istioctl run into the right typed error."""
    line = first_error_line(err, out)
    lowered = (err + "\n" + out).lower()
    # The CLI prefixes "error: " itself; kubectl's own prefix would double it.
    message = f"{re.sub(r'^(error|Error): ', '', line)} (from: {shown})"

    match = _SERVER_REASON.search(err)
    if match and match["reason"] in _REASONS:
        return _REASONS[match["reason"]](message, command=shown)
    if "is forbidden" in lowered or "forbidden" in line.lower():
        return errors.Forbidden(message, command=shown)
    if "internal error occurred" in lowered or "the server is currently unable to handle the request" in lowered \
            or "service unavailable" in lowered:
        return errors.ServerError(message, command=shown)  # a 500/503 that kubectl printed without its reason
    if "the object has been modified" in lowered:
        return errors.Conflict(message, command=shown)
    if "already exists" in lowered:
        return errors.AlreadyExists(message, command=shown)
    if re.search(r'the \S+ "[^"]*" is invalid', lowered):
        return errors.Invalid(message, command=shown)
    if "timed out waiting" in lowered or "client.timeout exceeded" in lowered or "deadline exceeded" in lowered:
        return errors.TimedOut(message, command=shown)
    if "doesn't have a resource type" in lowered or "could not find the requested resource" in lowered:
        return errors.NotFound(message, command=shown)
    if match and ("internal" in lowered or "500" in lowered):  # "Error from server: ..." without a reason
        return errors.ServerError(message, command=shown)
    if any(marker in lowered for marker in _UNREACHABLE):
        return errors.ClusterUnreachable(message, command=shown)
    if tool == "kubectl" and any(marker in lowered for marker in _CONFIG):
        return errors.ClusterUnreachable(message, command=shown)
    if match:
        return errors.ServerError(message, command=shown)
    if " not found" in lowered:
        return errors.NotFound(message, command=shown)
    return errors.ToolFailed(message, command=shown)

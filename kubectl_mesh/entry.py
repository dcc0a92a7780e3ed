"""The entry points: answers that need no click first, then the CLI.

`kubectl mesh --help`, `-h`, `kubectl mesh` alone, `--version` and the completion
of the first word are answered from text stored in `help_text.py`, generated from
the click command table by `python -m kubectl_mesh.help_text` (a test proves it
equals what click renders), so they cost a Python start and no import of click.
Everything else goes to cli.py. Nothing here imports more than os and sys.
"""

from __future__ import annotations

import os
import sys

# click formats help to the terminal's width, at most this (cli's max_content_width).
MAX_CONTENT_WIDTH = 100


def help_width() -> int:
    """The width click formats help to, found as click and shutil find it."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return max(min(columns or 80, MAX_CONTENT_WIDTH) - 2, 50)


def stored_answer(args: list[str]) -> tuple[str, str, int] | None:
    """(stdout, stderr, exit code) for the invocations answered from stored text."""
    from kubectl_mesh import help_text

    if args[:1] == ["__complete"]:
        return stored_completion(args[1:])
    key = tuple(args)
    if key not in help_text.INVOCATIONS:
        return None
    by_width = help_text.TEXTS.get(help_width())
    if by_width is None or key not in by_width:
        return None
    return by_width[key]


def stored_completion(words: list[str]) -> tuple[str, str, int] | None:
    """The first word (a command name, not an option) completed from the command table."""
    if len(words) != 1 or words[0].startswith("-"):
        return None
    from kubectl_mesh import help_text

    lines = [f"{name}\t{text}" if text else name for name, text in help_text.COMMANDS if name.startswith(words[0])]
    lines.append(f":{help_text.NO_FILE_COMPLETION}")
    return "\n".join(lines) + "\n", "", 0


def _answer(found: tuple[str, str, int]) -> None:
    out, err, code = found
    try:
        if out:
            sys.stdout.write(out)
            sys.stdout.flush()
        if err:
            sys.stderr.write(err)
            sys.stderr.flush()
    except BrokenPipeError:  # e.g. `kubectl mesh --help | head`
        pass
    os._exit(code)


def main(argv: list[str] | None = None) -> None:
    """`kubectl-mesh ARGS...`."""
    args = sys.argv[1:] if argv is None else argv
    found = stored_answer(args)
    if found is not None:
        _answer(found)
    from kubectl_mesh.cli import main as cli_main

    cli_main(args)


def complete_main(argv: list[str] | None = None) -> None:
    """`kubectl_complete-mesh WORDS...` (kubectl's plugin completion)."""
    words = sys.argv[1:] if argv is None else argv
    found = stored_completion(words)
    if found is not None:
        _answer(found)
    from kubectl_mesh.cli import complete_main as cli_complete_main

    cli_complete_main(words)

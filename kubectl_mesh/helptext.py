"""How `--help` reads, for every command: as kubectl's own help does.

Usage, what the command does, Examples (real invocations, each under a
comment saying what it does), the command's own options, its subcommands,
and then, once, the global options every command takes.
"""

from __future__ import annotations

import click

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class GlobalOption(click.Option):
    """An option every command takes (settings.global_options): listed apart, after the
    command's own."""


class HelpSections:
    """Mixin for click commands and groups: the sections above, and `examples`, a list of
    (command line, what it does)."""

    examples: tuple[tuple[str, str], ...] = ()

    def format_help(self, ctx, formatter):
        self.format_usage(ctx, formatter)
        self.format_help_text(ctx, formatter)
        self.format_examples(ctx, formatter)
        self.format_options(ctx, formatter)
        self.format_epilog(ctx, formatter)

    def format_examples(self, ctx, formatter):
        if not self.examples:
            return
        formatter.write_paragraph()
        formatter.write_text("Examples:")
        indent = " " * (formatter.current_indent + 2)
        for i, (line, what) in enumerate(self.examples):
            if i:
                formatter.write("\n")
            if what:
                formatter.write(f"{indent}# {what}\n")
            formatter.write(f"{indent}{line}\n")

    def own_params(self, ctx) -> list[click.Parameter]:
        """The parameters listed under Options (global ones come after, apart)."""
        return [p for p in self.get_params(ctx) if not isinstance(p, GlobalOption)]

    def format_options(self, ctx, formatter):
        own = [r for p in self.own_params(ctx) if isinstance(p, click.Option) and (r := p.get_help_record(ctx))]
        shared = [r for p in self.get_params(ctx) if isinstance(p, GlobalOption) and (r := p.get_help_record(ctx))]
        if own:
            with formatter.section("Options"):
                formatter.write_dl(own)
        if isinstance(self, click.Group):
            self.format_commands(ctx, formatter)
        if shared:
            with formatter.section("Global options"):
                formatter.write_dl(shared)


class MeshCommand(HelpSections, click.Command):
    def __init__(self, *args, examples=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.examples = tuple(examples)


class MeshGroup(HelpSections, click.Group):
    def __init__(self, *args, examples=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.examples = tuple(examples)

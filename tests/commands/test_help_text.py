"""The help and first-word completion answered without click (entry.py) are what click renders."""

from __future__ import annotations

import pytest

from kubectl_mesh import cli, entry, help_gen, help_text
from kubectl_mesh.complete import candidates, render
from kubectl_mesh.settings import Settings

REGENERATE = "the stored help is stale: regenerate it with `.venv/bin/python -m kubectl_mesh.help_gen`"


@pytest.mark.parametrize("width", help_gen.WIDTHS)
@pytest.mark.parametrize("args", help_gen.INVOCATIONS)
def test_stored_text_is_what_click_renders(args, width):
    assert help_text.TEXTS[width][args] == help_gen.render(args, width), REGENERATE


def test_stored_command_table_is_the_cli_s():
    assert help_gen.commands() == help_text.COMMANDS, REGENERATE
    assert help_text.INVOCATIONS == help_gen.INVOCATIONS and set(help_text.TEXTS) == set(help_gen.WIDTHS), REGENERATE


@pytest.mark.parametrize("word", ["", "e", "ca", "status", "zz"])
def test_first_word_completion_is_click_s(word):
    out, err, code = entry.stored_completion([word])
    assert (out, err, code) == (render(candidates(cli.cli, [word], Settings())), "", 0)


@pytest.mark.parametrize("args", [["enable", ""], ["-"], ["--con"], []])
def test_other_completions_are_left_to_click(args):
    assert entry.stored_completion(args) is None


@pytest.mark.parametrize("columns,width", [("", 78), ("80", 78), ("100", 98), ("160", 98), ("60", 58), ("10", 50)])
def test_width_found_as_click_finds_it(monkeypatch, columns, width):
    monkeypatch.setenv("COLUMNS", columns)
    monkeypatch.setattr(entry.sys, "__stdout__", None)  # not a terminal
    assert entry.help_width() == width


def test_only_the_stored_invocations_are_answered(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    assert entry.stored_answer(["--help"]) == help_text.TEXTS[78][("--help",)]
    assert entry.stored_answer(["enable", "--help"]) is None
    assert entry.stored_answer(["--help", "-v"]) is None
    monkeypatch.setenv("COLUMNS", "70")
    assert entry.stored_answer(["--help"]) is None

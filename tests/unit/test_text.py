"""text.py: suggested commands quoted word by word, terminal text without control characters."""

from __future__ import annotations

import shlex
import subprocess

import pytest

from kubectl_mesh.text import command, printable, quote


def test_plain_words_stay_as_they_are():
    assert command("kubectl", "rollout", "restart", "deployment/web", "-n", "my-app") == (
        "kubectl rollout restart deployment/web -n my-app")


@pytest.mark.parametrize("hostile", ["web$(id)", "web`id`", "a;rm -rf ~", "x'y", "a b", "$HOME", "-n"])
def test_shell_metacharacters_are_quoted_so_the_word_means_itself(hostile):
    line = command("printf", "%s", hostile)
    assert shlex.split(line) == ["printf", "%s", hostile]
    assert subprocess.run(["bash", "-c", line], capture_output=True, text=True).stdout == hostile


@pytest.mark.parametrize("hostile", ["a\nb", "clear\x1b[2J", "bell\x07", "rtl\u202egnp.exe", "cr\rover"])
def test_control_characters_in_a_word_use_ansi_c_quoting_on_one_line(hostile):
    line = quote(hostile)
    assert line.startswith("$'") and "\n" not in line and "\x1b" not in line and "\u202e" not in line
    out = subprocess.run(["bash", "-c", f"printf %s {line}"], capture_output=True).stdout
    assert out.decode() == hostile


def test_printable_escapes_every_control_character():
    assert printable("ok\x1b[2J\x07\u202e\n✓ forged") == "ok\\x1b[2J\\x07\\u202e\\n✓ forged"
    assert printable("a\nb\x1bc", keep_newlines=True) == "a\nb\\x1bc"
    assert printable("ünïcödé, ✓ and 中文 stay") == "ünïcödé, ✓ and 中文 stay"

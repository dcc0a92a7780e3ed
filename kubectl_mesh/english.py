"""Counts in messages, read as English: `1 warning`, `2 workloads`, `1 of 1 pod has`."""

from __future__ import annotations

IRREGULAR = {"proxy": "proxies", "policy": "policies", "was": "were", "has": "have", "is": "are", "does": "do",
             "carries": "carry"}


def plural_of(word: str) -> str:
    return IRREGULAR.get(word, word + "s")


def count(n: int, word: str, many: str | None = None) -> str:
    """`1 pod`, `2 pods`, `0 pods`."""
    return f"{n} {word if n == 1 else (many or plural_of(word))}"


def of_total(n: int, total: int, noun: str, verb: str = "") -> str:
    """`1 of 1 pod has`, `1 of 3 pods has`, `2 of 3 pods have` (verb given in its singular)."""
    text = f"{n} of {total} {noun if total == 1 else plural_of(noun)}"
    return f"{text} {agree(n, verb)}" if verb else text


def agree(n: int, singular: str) -> str:
    """The verb agreeing with a count: `has`/`have`, `runs`/`run`."""
    if n == 1:
        return singular
    return IRREGULAR.get(singular, singular[:-1] if singular.endswith("s") else singular)

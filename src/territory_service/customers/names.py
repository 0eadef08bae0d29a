"""Company names and registration ids folded to the form in which duplicates (撞单) are compared.

Pure functions: no database, no framework.
"""

from __future__ import annotations

import re
import unicodedata
from difflib import SequenceMatcher

# The stored form's column length: a folded name never exceeds it.
NORMALIZED_LENGTH = 200

# Legal-form words that say nothing about which company it is, removed from the end of a name.
_LATIN_SUFFIXES = frozenset(
    {"co", "company", "ltd", "limited", "inc", "incorporated", "corp", "corporation", "llc",
     "llp", "lp", "plc", "pte", "pty", "gmbh", "ag", "kg", "sa", "srl", "spa", "bv", "nv",
     "group", "holding", "holdings"}
)  # fmt: skip
# Longest first, so that 股份有限公司 goes as one piece rather than leaving 股份 behind.
_CJK_SUFFIXES = (
    "股份有限公司", "有限责任公司", "有限公司", "股份公司", "有限合伙", "集团", "控股", "公司",
)  # fmt: skip
_NOT_WORD = re.compile(r"[\W_]+")
# Apostrophes join rather than split: "McDonald's" is one word.
_APOSTROPHES = re.compile(r"['\u2019]")


def _fold(text: str) -> str:
    """Width, compatibility forms and case folded (Unicode NFKC and case folding, repeated
    until stable so that folding twice changes nothing)."""
    folded = unicodedata.normalize("NFKC", text)
    for _ in range(4):
        again = unicodedata.normalize("NFKC", folded.casefold())
        if again == folded:
            break
        folded = again
    return folded


def _words(name: str) -> list[str]:
    words = _NOT_WORD.sub(" ", _APOSTROPHES.sub("", _fold(name))).split()
    # Initials written apart ("S.A.", "L L C") make one word, so that they fold like "SA".
    joined: list[str] = []
    initials = False
    for word in words:
        letter = len(word) == 1 and word.isascii() and word.isalpha()
        if letter and initials:
            joined[-1] += word
        else:
            joined.append(word)
        initials = letter
    return joined


def normalize_name(name: str) -> str:
    """The name as duplicates are compared: full-width forms, case, punctuation, spacing and
    legal suffixes folded away. `上海华东机械集团有限公司`, `上海华东机械（集团）有限公司` and
    `上海 华东机械` fold alike, as do `Acme Co., Ltd.`, `ACME, Inc.` and `ａｃｍｅ`.

    Folding is idempotent, and a name is never folded to nothing while it has a letter or a
    digit: a name that is only a legal suffix (`有限公司`) keeps it.
    """
    words = _words(name)
    while len(words) > 1 and words[-1] in _LATIN_SUFFIXES:
        words.pop()
    # Joined words can compose (conjoining jamo, say): fold once more, then cut to the column.
    folded = _fold("".join(words))[:NORMALIZED_LENGTH]
    while True:
        suffix = next((s for s in _CJK_SUFFIXES if folded.endswith(s)), None)
        if suffix is None or suffix == folded:
            return folded
        folded = folded[: -len(suffix)]


def registration_key(registration_id: str | None) -> str | None:
    """A registration id (统一社会信用代码, tax id) as duplicates compare it: case and the
    hyphens CRMs write into some ids folded away, so `91310000-MA1FL0XX1K` and
    `91310000ma1fl0xx1k` are one id."""
    if registration_id is None:
        return None
    folded = _NOT_WORD.sub("", _fold(registration_id)).upper()
    return folded or None


def name_similarity(first: str, second: str) -> float:
    """How alike two folded names are, from 0 to 1 (difflib's ratio: twice the matching
    characters over both lengths). Equal names are 1."""
    if first == second:
        return 1.0
    return SequenceMatcher(None, first, second, autojunk=False).ratio()


def at_least_as_similar(first: str, second: str, threshold: float) -> float | None:
    """The similarity of two folded names when it reaches `threshold`, else None; cheap upper
    bounds reject most pairs before the full comparison."""
    if first == second:
        return 1.0
    matcher = SequenceMatcher(None, first, second, autojunk=False)
    if matcher.real_quick_ratio() < threshold or matcher.quick_ratio() < threshold:
        return None
    ratio = matcher.ratio()
    return ratio if ratio >= threshold else None

"""Company names folded to the form in which duplicates (撞单) are compared."""

from __future__ import annotations

import re
import unicodedata

# Legal-form words that say nothing about which company it is, removed from the end of a name.
_LATIN_SUFFIXES = frozenset(
    {"co", "company", "ltd", "limited", "inc", "incorporated", "corp", "corporation", "llc",
     "plc", "gmbh", "ag", "sa", "group", "holdings"}
)  # fmt: skip
_CJK_SUFFIXES = ("股份有限公司", "有限责任公司", "有限公司", "股份公司", "集团", "公司")
_NOT_WORD = re.compile(r"[\W_]+")


def normalize_name(name: str) -> str:
    """Full-width forms, case, punctuation, spacing and legal suffixes folded away:
    `上海华东机械集团有限公司` and `上海华东机械（集团）有限公司` fold alike, as do
    `Acme Co., Ltd.` and `ACME`."""
    words = _NOT_WORD.sub(" ", unicodedata.normalize("NFKC", name).casefold()).split()
    while len(words) > 1 and words[-1] in _LATIN_SUFFIXES:
        words.pop()
    folded = "".join(words)
    stripped = True
    while stripped:
        stripped = False
        for suffix in _CJK_SUFFIXES:
            if folded.endswith(suffix) and len(folded) > len(suffix):
                folded, stripped = folded[: -len(suffix)], True
    return folded

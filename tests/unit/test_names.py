"""Folded company names: what counts as the same name when looking for duplicates (撞单)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from territory_service.customers.names import (
    NORMALIZED_LENGTH,
    at_least_as_similar,
    name_similarity,
    normalize_name,
    registration_key,
)
from territory_service.demo.catalog import NEAR_DUPLICATES, NearDuplicate


@pytest.mark.parametrize(
    ("variants", "folded"),
    [
        (
            [
                "上海华东机械有限公司",
                "上海华东机械集团有限公司",
                "上海华东机械（集团）有限公司",
                "上海华东机械股份有限公司",
                "上海 华东 机械",
                "上海华东机械有限责任公司",
                "  上海·华东机械  ",
            ],
            "上海华东机械",
        ),
        (
            [
                "Acme Co., Ltd.",
                "ACME, Inc.",
                "ａｃｍｅ",
                "Acme Corporation",
                "acme  group holdings",
            ],
            "acme",
        ),
        (["Banco S.A.", "BANCO SA", "Banco, S. A."], "banco"),
        (["McDonald's Corp", "McDonalds Inc"], "mcdonalds"),
        (["３Ｍ Company", "3M"], "3m"),
        (["华东 Co., Ltd.", "华东有限公司"], "华东"),
    ],
)
def test_spellings_of_one_company_fold_alike(variants: list[str], folded: str) -> None:
    assert {normalize_name(name) for name in variants} == {folded}


@pytest.mark.parametrize(
    ("name", "folded"),
    [
        ("有限公司", "有限公司"),
        ("集团有限公司", "集团"),
        ("Group Ltd", "group"),
        ("Limited", "limited"),
    ],
)
def test_a_name_that_is_only_a_legal_form_keeps_it(name: str, folded: str) -> None:
    assert normalize_name(name) == folded


def test_different_companies_stay_different() -> None:
    names = ["上海华东机械有限公司", "上海华南机械有限公司", "华东机械有限公司", "Acme Tech Ltd"]
    assert len({normalize_name(name) for name in names}) == len(names)


def test_registration_ids_fold_case_and_hyphens() -> None:
    assert registration_key("91310000-ma1fl0xx1k") == "91310000MA1FL0XX1K"
    assert registration_key("91310000MA1FL0XX1K") == "91310000MA1FL0XX1K"
    assert registration_key(None) is None
    assert registration_key("--") is None


def test_similarity_is_one_for_equal_names_and_lower_for_others() -> None:
    assert name_similarity("华东机械", "华东机械") == 1.0
    assert name_similarity("上海华东机械", "华东机械") == pytest.approx(0.8)
    assert name_similarity("华东机械", "acme") == 0.0
    assert at_least_as_similar("上海华东机械", "华东机械", 0.8) == pytest.approx(0.8)
    assert at_least_as_similar("上海华东机械", "华东机械", 0.81) is None


# Characters of the generated names: none of them is part of a legal suffix, so appending a
# suffix to a generated name can never make a longer suffix out of its end.
CJK = "上海华东南北京机械科技电子制造贸易深圳广州杭苏天津重庆成都武汉西安药业食品能源汽车新材料光"
LATIN_SUFFIX_WORDS = {"co", "ltd", "inc", "corp", "llc", "llp", "lp", "plc", "pte", "pty", "ag"}
LATIN_SUFFIX_WORDS |= {"kg", "sa", "srl", "spa", "bv", "nv", "gmbh", "group", "holding"}

cjk_tokens = st.text(alphabet=CJK, min_size=1, max_size=6)
latin_tokens = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=2, max_size=8)
latin_tokens = latin_tokens.filter(
    lambda word: (
        word not in LATIN_SUFFIX_WORDS
        and word not in {"company", "limited", "incorporated", "corporation", "holdings"}
    )
)
cores = st.lists(st.one_of(cjk_tokens, latin_tokens), min_size=1, max_size=5)
SUFFIXES = [
    "有限公司",
    "股份有限公司",
    "有限责任公司",
    "（集团）有限公司",
    "集团股份有限公司",
    " Co., Ltd.",
    ", Inc.",
    " Corp",
    " L.L.C.",
    " GmbH",
    " Holdings Limited",
    " S.A.",
]
SEPARATORS = [" ", "\u3000", "  ", " · ", ", ", " - ", "、", "（", "）", " / ", "\t"]


def full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


@st.composite
def spellings(draw: st.DrawFn) -> tuple[str, str]:
    """A name written plainly, and the same name in another case, width, punctuation, spacing
    and legal form."""
    tokens = draw(cores)
    plain = " ".join(tokens)
    written = ""
    for index, token in enumerate(tokens):
        if draw(st.booleans()):
            token = token.upper()
        if draw(st.booleans()):
            token = full_width(token)
        if index:
            written += draw(st.sampled_from(SEPARATORS))
        written += token
    written = draw(st.sampled_from(["", " ", "（", "\u3000"])) + written
    written += draw(st.sampled_from(["", *SUFFIXES]))
    written += draw(st.sampled_from(["", " ", "。", ")"]))
    return plain, written


@given(spellings())
def test_case_width_punctuation_spacing_and_legal_form_do_not_matter(
    spelling: tuple[str, str],
) -> None:
    plain, written = spelling
    assert normalize_name(written) == normalize_name(plain)


@given(st.text(max_size=300))
def test_folding_is_idempotent(name: str) -> None:
    folded = normalize_name(name)
    assert normalize_name(folded) == folded
    assert len(folded) <= NORMALIZED_LENGTH


@given(st.text(max_size=300))
def test_a_name_with_a_letter_or_digit_never_folds_to_nothing(name: str) -> None:
    if any(c.isalnum() for c in name):
        assert normalize_name(name) != ""


@given(st.text(max_size=40), st.text(max_size=40))
def test_similarity_is_symmetric_enough_and_bounded(first: str, second: str) -> None:
    score = name_similarity(first, second)
    assert 0.0 <= score <= 1.0
    assert (score == 1.0) == (first == second)
    assert at_least_as_similar(first, second, score) == score


@pytest.mark.parametrize("entry", NEAR_DUPLICATES, ids=lambda entry: entry.first)
def test_the_demo_companies_entered_twice_fold_alike(entry: NearDuplicate) -> None:
    assert normalize_name(entry.first) == normalize_name(entry.second)

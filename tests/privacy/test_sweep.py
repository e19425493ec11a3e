"""The sweep's replacement: every needle gone, case ignored, distinct values kept distinct."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cxm.privacy.sweep import MIN_SUBSTRING, Replacer

WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789@.+", min_size=MIN_SUBSTRING,
               max_size=20)  # fmt: skip


@given(st.lists(WORD, min_size=1, max_size=4), st.lists(st.text(max_size=12), max_size=5))
def test_no_needle_survives_in_any_case(needles: list[str], filler: list[str]) -> None:
    text = "".join(f"{f}{n.upper() if i % 2 else n}" for i, (f, n) in
                   enumerate(zip(filler + [""] * len(needles), needles, strict=False)))  # fmt: skip
    out = Replacer(needles).text(text)
    for needle in needles:
        assert needle.lower() not in out.lower()


def test_the_same_value_is_replaced_alike_and_different_values_differently() -> None:
    r = Replacer(["ana@example.com", "bo@example.com"])
    first, second = r.text("to ana@example.com"), r.text("cc ANA@example.com")
    assert first[3:] == second[3:] and "example" not in first
    assert r.text("bo@example.com") != r.text("ana@example.com")
    assert r.json({"to": ["ana@example.com"], "n": 3}) == {"to": [first[3:]], "n": 3}


def test_values_too_short_to_tell_apart_are_left_alone() -> None:
    assert Replacer(["42", "u1"]).text("order 42 by u1") == "order 42 by u1"

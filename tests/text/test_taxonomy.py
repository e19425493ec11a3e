import pytest
from sqlalchemy.engine import Engine

from cxm.errors import Invalid, NotFound
from cxm.text import taxonomy
from cxm.text.schemas import Theme
from cxm.yamldoc import parse


def test_starter_taxonomy_applies_and_is_idempotent(seeded: Engine) -> None:
    with seeded.begin() as conn:
        first = taxonomy.apply(conn, taxonomy.starter_doc())
        again = taxonomy.apply(conn, taxonomy.starter_doc())
        themes = taxonomy.list_themes(conn, "starter")
    expected = {"delivery", "billing", "staff_friendliness", "wait_time", "product_quality",
                "price", "usability", "repeat_contact"}  # fmt: skip
    assert set(first.created) == expected
    assert again.created == [] and again.updated == [] and again.removed == []
    assert {t.key: t.department_key for t in themes}["delivery"] == "supply_chain"


def test_unknown_department_is_reported_with_its_line(seeded: Engine) -> None:
    doc = parse(
        "taxonomy: mine\nthemes:\n  - key: late\n    name: Late\n    department: logistics\n"
        "    keywords: [late]\n",
        "mine.yaml",
    )
    with seeded.begin() as conn, pytest.raises(Invalid, match=r"mine.yaml line 5.*'logistics'"):
        taxonomy.apply(conn, doc)
    with seeded.connect() as conn, pytest.raises(NotFound, match="cxm text taxonomy apply"):
        taxonomy.list_themes(conn, "mine")


def test_keywords_match_whole_words_with_suffix_wildcards() -> None:
    pattern = taxonomy.keyword_pattern(["deliver*", "on hold"])
    assert pattern is not None
    assert pattern.search("Delivered late")
    assert pattern.search("I was ON   hold for ages")
    assert not pattern.search("undelivered")  # whole words only
    assert not pattern.search("household")


def _theme(key: str, keywords: list[str], examples: list[str]) -> Theme:
    return Theme(taxonomy="t", key=key, name=key, department_key=None, keywords=keywords,
                 examples=examples, threshold=0.55)  # fmt: skip


def test_a_text_can_carry_several_themes_by_keyword() -> None:
    tagger = taxonomy.Tagger(
        [_theme("delivery", ["parcel"], []), _theme("billing", ["invoice"], [])], semantic=False
    )
    (tags,) = tagger.tag(["The parcel was late and the invoice wrong"])
    assert {t.theme_key for t in tags} == {"delivery", "billing"}
    assert all(t.method == "keyword" for t in tags)


def test_semantic_tagging_matches_meaning_without_the_keyword() -> None:
    tagger = taxonomy.Tagger(
        [
            _theme(
                "wait", ["on hold"], ["I waited forty minutes on the phone before anyone answered"]
            )
        ],
        semantic=True,
    )
    near, far = tagger.tag(
        ["It took an hour of waiting on the phone before someone picked up", "Lovely colours"]
    )
    assert [(t.theme_key, t.method) for t in near] == [("wait", "semantic")]
    assert near[0].similarity is not None and near[0].similarity >= 0.55
    assert far == []

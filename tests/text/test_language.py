from hypothesis import given
from hypothesis import strategies as st

from cxm.text.language import SUPPORTED, UNDETERMINED, detect


def test_detects_the_four_supported_languages() -> None:
    assert detect("The delivery was late and nobody told me") == "en"
    assert detect("Die Lieferung kam drei Tage zu spät") == "de"
    assert detect("La facture était fausse et le remboursement n'est jamais arrivé") == "fr"
    assert detect("El pedido llegó tarde y nadie me avisó") == "es"


def test_text_without_words_is_undetermined() -> None:
    assert detect("12345 !!!") == UNDETERMINED


@given(st.text(max_size=200))
def test_any_text_gets_a_supported_language_or_und(text: str) -> None:
    assert detect(text) in (*SUPPORTED, UNDETERMINED)


def test_short_and_emoji_text_is_undetermined_not_guessed() -> None:
    assert detect("👍👍") == UNDETERMINED
    assert detect("Super Service 👍") == UNDETERMINED

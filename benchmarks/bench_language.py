"""Language identification of short comments: accuracy and speed.

Two sets, each text with the language it is known to be written in:

- short customer comments in seven languages written for this benchmark (``SHORT`` below,
  the kind the issue tracker reported: "great. Well deserved.", "recebi produto errado");
- the test tweets of UMSAB (``benchmarks/data/umsab``, XLM-T, Barbieri et al. LREC 2022):
  870 per language for English, German, French, Spanish, Portuguese and Italian; a tweet's
  language is its corpus's.

cxm (``language.detect_many``: a fast path for plainly English text, then Lingua among the
languages cxm detects, undetermined below a confidence of 0.2) runs beside the baseline: Lingua
choosing among all 75 of its languages with its defaults. Accuracy counts ``und`` as wrong.

    .venv/bin/python benchmarks/bench_language.py [--limit 200]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from cxm.text import language

UMSAB = Path(__file__).parent / "data" / "umsab"
CODES = {"english": "en", "german": "de", "french": "fr", "spanish": "es",
         "portuguese": "pt", "italian": "it"}  # fmt: skip
SHORT = {
    "en": ["great. Well deserved.", "Fast delivery, thanks!", "Parcel arrived late again",
           "Never ordering again", "The agent was very helpful", "wrong size sent",
           "Good value for money", "still waiting for my refund", "love it",
           "Terrible customer service"],
    "de": ["Lieferung kam zu spät", "Sehr freundlicher Service", "Paket war beschädigt",
           "Alles super, danke!", "Nie wieder", "Rechnung war falsch", "schnelle Lieferung",
           "Ware kam nicht an", "gute Qualität", "Kundenservice nicht erreichbar"],
    "fr": ["Livraison rapide, merci", "colis arrivé en retard", "très déçu du service",
           "produit conforme", "Service client injoignable", "Je recommande vivement",
           "article cassé à la réception", "remboursement toujours pas reçu", "parfait",
           "trop cher pour la qualité"],
    "es": ["Entrega rápida, gracias", "el paquete llegó tarde", "muy mal servicio",
           "producto de buena calidad", "nunca más", "me cobraron dos veces",
           "atención excelente", "llegó roto", "todavía espero el reembolso",
           "muy contento con la compra"],
    "pt": ["recebi produto errado", "gostei do produto", "entrega rápida, obrigado",
           "produto chegou quebrado", "ainda não recebi", "atendimento péssimo", "recomendo",
           "veio faltando peça", "muito bom", "demorou demais para chegar"],
    "it": ["consegna veloce, grazie", "pacco arrivato in ritardo", "servizio clienti pessimo",
           "prodotto ottimo", "mai più", "rimborso non ancora ricevuto", "molto soddisfatto",
           "articolo danneggiato", "prezzo troppo alto", "personale gentile"],
    "nl": ["snelle levering, bedankt", "pakket kwam te laat", "slechte klantenservice",
           "product is prima", "nooit meer", "terugbetaling nog steeds niet ontvangen",
           "erg tevreden", "artikel was beschadigd", "te duur", "vriendelijk personeel"],
}  # fmt: skip


def baseline(texts: list[str]) -> list[str]:
    from lingua import LanguageDetectorBuilder

    detector = LanguageDetectorBuilder.from_all_languages().build()
    found = detector.detect_languages_in_parallel_of(texts)
    return [f.iso_code_639_1.name.lower() if f is not None else "und" for f in found]


def report(name: str, truth: list[str], texts: list[str]) -> None:
    start = time.perf_counter()
    ours = language.detect_many(texts)
    ours_s = time.perf_counter() - start
    start = time.perf_counter()
    theirs = baseline(texts)
    theirs_s = time.perf_counter() - start
    print(f"\n{name}: {len(texts)} texts")
    print(f"{'language':9} {'n':>5} {'cxm':>6} {'und':>5} {'Lingua, all 75':>15}")
    for lang in sorted(set(truth)):
        idx = [i for i, t in enumerate(truth) if t == lang]
        acc = sum(ours[i] == lang for i in idx) / len(idx)
        und = sum(ours[i] == "und" for i in idx)
        base = sum(theirs[i] == lang for i in idx) / len(idx)
        print(f"{lang:9} {len(idx):5d} {acc:6.3f} {und:5d} {base:15.3f}")
    acc = sum(o == t for o, t in zip(ours, truth, strict=True)) / len(truth)
    base = sum(o == t for o, t in zip(theirs, truth, strict=True)) / len(truth)
    print(f"{'all':9} {len(truth):5d} {acc:6.3f} {ours.count('und'):5d} {base:15.3f}")
    print(f"texts/s (incl. first model loads): cxm {len(texts) / ours_s:,.0f}, "
          f"baseline {len(texts) / theirs_s:,.0f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=200, help="UMSAB tweets per language")
    args = parser.parse_args()
    truth = [lang for lang, texts in SHORT.items() for _ in texts]
    report("short comments", truth, [t for texts in SHORT.values() for t in texts])
    texts, truth = [], []
    for folder, code in CODES.items():
        lines = (UMSAB / folder / "test_text.txt").read_text(encoding="utf-8").splitlines()
        texts += lines[: args.limit]
        truth += [code] * len(lines[: args.limit])
    report("UMSAB test tweets", truth, texts)


if __name__ == "__main__":
    main()

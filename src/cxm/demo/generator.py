"""Generate the Northwind Living demo company as the files a real company would export.

This module owns the *execution* of the demo model in ``causal.py``: it draws customers, their
activity across departments, the frictions they meet, their survey answers and comments and the
employees' pulse answers, and writes everything to one folder:

* ``org.yaml`` (departments, teams, touchpoints) and ``surveys/*.yaml`` (survey definitions),
* ``interactions.parquet`` or ``interactions.jsonl`` (the append-only interaction log),
* ``responses.csv`` (survey answers), ``employees.csv`` and ``pulse.csv``,
* ground truth that is never loaded as facts: ``customers.csv`` and ``ground_truth.json``.

Everything is vectorised with numpy/pyarrow (no Python loop per event), so 100,000 customers over
12 months (about ten million events) take a minute or two. The same arguments give byte-identical
files: each stage draws from its own random stream and nothing depends on the clock.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cxm.demo import causal as C
from cxm.errors import Invalid

Progress = Callable[[str], None]
Table = dict[str, np.ndarray]  # a set of equally long columns, one row per thing that happened

MINUTE = 60
HOUR = 3_600
DAY = 86_400
MONTH = 30.4375 * DAY  # average month, for rates per month
NEVER = np.iinfo(np.int64).max // 2
FORMATS = ("parquet", "jsonl")
CHUNK_ROWS = 1_000_000  # rows per parquet row group and per jsonl write
EMPLOYEE_DOMAIN = "northwind-living.example"

# One random stream per stage, so changing one stage leaves the others' draws alone.
# New stages go at the end: each stage's stream is the same whatever follows it.
_STAGES = (
    "customers", "activity", "surveys", "interactions", "comments", "employees", "carriers",
    "partner_pulse",
)  # fmt: skip


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


@dataclass(frozen=True)
class GenerationSummary:
    """What ``generate`` wrote: the path of each file and its row count."""

    out_dir: Path
    seed: int
    customers: int
    months: int
    fmt: str
    paths: dict[str, Path] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        head = f"Northwind Living (seed {self.seed}, {self.customers:,} customers, "
        head += f"{self.months} months) in {self.out_dir}"
        return "\n".join([head] + [f"  {k}: {n:,} rows" for k, n in self.counts.items()])


# ============================================================================================
# Comment phrase banks
# ============================================================================================
# A comment is composed as opener + core (+ detail) + "." (+ closer). Slots in braces take the
# respondent's own numbers (days late, minutes waited, contacts). English has the most pieces;
# German and French (about 8% of respondents) have smaller banks and fall back per tone.


@dataclass(frozen=True)
class Phrases:
    """One bank: a comment is ``opener + core + detail + closer``, each piece drawn at random."""

    cores: tuple[str, ...]
    openers: tuple[str, ...] = ("",)
    details: tuple[str, ...] = ("",)
    closers: tuple[str, ...] = ("",)


# Banks in a small line format, so the wording reads like text:
#   "# <language> <topic>" starts a bank; "^ <language> <topic>" copies that bank's openers and
#   closers; "<" opener, "=" core, "+" detail, ">" closer. Openers, details and closers also
#   have an implicit empty choice. Topics: a friction key (negative tone), "<friction>/mixed"
#   (the friction named in a neutral or positive answer), "positive/...", "negative/...",
#   "neutral". German and French have smaller banks and fall back per tone ("positive", ...).
_PHRASE_TEXT = """
# en late_delivery
< Honestly,
< Not impressed.
< Disappointing.
< To be honest,
< Sadly,
< Once again,
= my order arrived {days} late
= the delivery came {days} after the promised date
= I waited {days} longer than promised for my parcel
= delivery took {days} longer than you said
= the delivery was delayed by {days}
= my sofa showed up {days} late
= the parcel turned up {days} past the delivery window
= there was a delay of {days} with my delivery
= I had to wait {days} beyond the delivery date
= the courier was {days} late
= my order was late, {days} after the date you promised
+ and nobody told me about the delay
+ without any update on the tracking page
+ even though I paid for express delivery
+ and I had taken a day off to be at home
+ while the tracking kept saying it was out for delivery
+ so I had to rearrange my whole week
> Please sort out your deliveries.
> Not acceptable.
> Very frustrating.
> I expected better.
> I will think twice before ordering again.
> Fix your logistics!

# en late_delivery/mixed
< Overall ok.
< Mostly fine.
< Nice product.
< Good in the end.
= the delivery was {days} late but the product is lovely
= it arrived a bit late ({days}), otherwise fine
= a delay of {days}, but the driver was friendly
= the delay was annoying but at least you kept me informed
= late by {days}, still happy with the table
= waited longer than promised, but it arrived in one piece
= delivery was slower than promised, the quality makes up for it
= arrived {days} late, not a big deal this time
> Just work on the delivery times.
> Faster delivery would make it perfect.
> Hope the next one is on time.
> Please keep the delivery promise next time.

# en damaged_item
< Really annoyed.
< Unbelievable.
< Honestly,
< Not happy.
< Sadly,
= the item arrived damaged
= the lamp was broken when it arrived
= the box was crushed and the table was scratched
= one of the chairs arrived with a cracked leg
= the glass top was shattered on arrival
= my order came damaged and I had to send it back
= the cabinet was dented and scratched
= the parcel was smashed and the contents broken
= the mirror arrived cracked
= the sofa had a torn cover when it was delivered
+ and the return took ages
+ and I had to send photos twice
+ and the replacement is still not here
+ because the packaging was far too thin
+ and the driver just left it at the door
+ and it was a present
> Pack your products properly.
> Very disappointing.
> Not acceptable at this price.
> I expected better quality control.
> What a waste of time.

# en damaged_item/mixed
< Ok in the end.
< Mixed feelings.
< Mostly fine.
= the first one arrived damaged but the replacement came quickly
= a small scratch on delivery, support sorted it out
= the packaging was damaged, the product itself mostly fine
= returning the broken item was easy
= one piece was broken, the rest is great
= it arrived with a dent, but the exchange was painless
= a cracked part on arrival, replaced within a week
> Better packaging please.
> Thanks for the quick replacement.
> Still like the product.

# en billing_error
< Seriously?
< Not ok.
< Frustrating.
< Honestly,
< Again,
= I was charged twice this month
= my invoice was wrong
= you overcharged me on the last bill
= the invoice shows the wrong plan
= I was billed for a plan I had already downgraded
= there is a double charge on my card
= my bill was higher than agreed
= the monthly invoice had an incorrect amount
= I was overcharged and I am still waiting for my refund
= I was charged the wrong price for my subscription
= the billing is a mess, wrong amount again
+ and it took {weeks} to get the money back
+ and nobody could explain the charge
+ and the refund still hasn't arrived
+ and I had to call billing to fix it
+ for the second month in a row
+ without any explanation on the invoice
> Please check your invoices.
> This is not how you treat customers.
> I am considering cancelling.
> Very annoying.
> Get your billing in order.

# en billing_error/mixed
< Generally fine.
< Mostly ok.
< Good service otherwise.
= there was a billing mistake but the refund came quickly
= the invoice was wrong once, fixed after one call
= a double charge, refunded within a week
= apart from the billing error the service is good
= overcharged once, it has been corrected now
= a wrong invoice, but billing apologised and fixed it
= the extra charge was refunded without fuss
> Just double-check the invoices.
> Thanks for fixing the bill.
> Please avoid billing errors.

# en repeat_contact
< Ridiculous.
< Honestly,
< Fed up.
< Exhausting.
< Sadly,
= I had to call again because nothing was fixed
= this is the third time I am contacting you about the same issue
= I contacted support {times} and nobody fixed it
= every time I call I get transferred to someone else
= I had to explain my problem over and over
= nobody followed up so I had to chase you again
= the issue was marked as solved but it never was
= I keep having to contact you about the same thing
= I was transferred three times and still have no solution
= support promised to call back and never did
= I called again and again about the same problem
+ and I had to explain everything from the start
+ and every agent told me something different
+ and the ticket was closed without a fix
+ and I am still waiting for an answer
+ which cost me hours
> Nobody takes ownership.
> Please fix things the first time.
> Terrible service.
> This wastes my time.
> I am losing patience.

# en repeat_contact/mixed
< Got there in the end.
< Fine now.
< Ok.
= it took a second call, but the agent finally solved it
= had to contact you {times}, but it is sorted now
= needed a follow-up, the second agent was great
= the first answer did not help, the second one did
= I had to call again, but then it was fixed quickly
= it took more than one contact, otherwise good support
> First-time fixes would be nice.
> Thanks to the second agent.
> Hope it stays fixed.

# en long_wait
< Way too slow.
< Honestly,
< Not ok.
< Terrible.
< Sigh.
= I waited {minutes} minutes on hold
= I was on hold for {minutes} minutes
= the queue was endless, {minutes} minutes before anyone answered
= it took {minutes} minutes to reach a person
= I waited {minutes} minutes in the chat queue
= the hold music played for {minutes} minutes
= I spent {minutes} minutes waiting to speak to someone
= hold times are ridiculous, {minutes} minutes today
= nobody picked up for {minutes} minutes
+ before I could even explain my problem
+ and then the call dropped
+ for a simple question
+ during my lunch break
+ with no estimate of the waiting time
> Hire more agents.
> Your hotline is understaffed.
> Unacceptable waiting times.
> Nobody has time for this.
> Please offer a call-back.

# en long_wait/mixed
< Helpful in the end.
< Ok.
< Good answer, slow start.
= a long wait on hold ({minutes} minutes), but the agent was helpful
= the queue took a while, the answer was good
= waited {minutes} minutes, friendly staff once connected
= far too long on hold, otherwise fine
= the waiting time was long but the problem got solved
= {minutes} minutes in the queue, then quick help
> Shorter queues please.
> Worth the wait, just barely.
> Please answer faster.

# en positive/friendly_staff
< Thanks!
< Very happy.
< Great job.
< Wow,
< Brilliant.
= the staff were really friendly
= the agent was super helpful
= friendly and competent support
= the team was kind and patient
= great service from your team
= the person on the phone was lovely
= the driver was polite and careful
= everyone I dealt with was helpful
> Keep it up!
> Thank you.
> Recommended.
> Will come back.
> 10/10.

# en positive/fast_delivery
^ en positive/friendly_staff
= fast delivery
= delivery was quick and on time
= it arrived earlier than expected
= the driver was right on time
= smooth and quick delivery
= delivered the next day, impressive
= on time, as promised

# en positive/great_quality
^ en positive/friendly_staff
= great quality
= the sofa is beautiful
= excellent quality for the price
= I love the new table
= really well-made furniture
= the bed is so comfortable
= the lamp looks even better than in the photos

# en positive/easy_self_service
^ en positive/friendly_staff
= the app made it easy
= changing my address was quick and simple
= very easy to use
= it took me two minutes
= the help centre is clear and to the point
= I found what I needed straight away
= easy to reschedule my delivery in the app

# en neutral
< Hmm.
< Well,
< Meh.
= it was ok
= fine, nothing special
= as expected
= an average experience
= does the job
= no complaints, no wow either
= decent overall
= could be better, could be worse
= all right I suppose
> Nothing to add.
> We will see next time.
> Room for improvement.

# en negative/price
< Not great.
< Meh.
< Disappointed.
< Honestly,
= too expensive for what you get
= prices went up again
= the subscription is not worth the money
= it is cheaper elsewhere
> Please improve.
> Not happy.
> Expected more.
> Do better.

# en negative/product_quality
^ en negative/price
= the fabric feels cheap
= the quality is not what it used to be
= the drawer does not close properly
= the colour looks different from the website

# en negative/website
^ en negative/price
= the website is slow
= it is hard to find anything on the website
= the app keeps logging me out
= checkout kept failing

# en negative/self_service
^ en negative/price
= the form kept failing
= I could not find where to change my address
= I had to try several times
= the menus are confusing
= the app crashed while I was changing my delivery date
= too many steps for a simple change

# en negative/support
^ en negative/price
= the answer was vague
= the agent did not seem to know the product
= support was not very helpful
= I got a copy-paste answer

# de late_delivery
< Schade.
< Sehr enttäuschend.
< Nicht gut.
= die Lieferung kam {tage} zu spät
= ich habe {tage} länger auf mein Paket gewartet
= meine Bestellung war {tage} verspätet
= der Liefertermin wurde um {tage} überschritten
= das Sofa kam erst {tage} nach dem versprochenen Termin
+ und niemand hat mich informiert
+ ohne jede Info zur Verspätung
> Bitte bessern Sie die Lieferzeiten.
> So nicht.
> Sehr ärgerlich.

# de late_delivery/mixed
< Insgesamt okay.
= die Lieferung war {tage} zu spät, aber das Produkt ist toll
= etwas verspätet, sonst alles gut
= trotz Verspätung bin ich zufrieden
= die Lieferung hat länger gedauert, aber der Fahrer war freundlich
> Nächstes Mal bitte pünktlich.

# de damaged_item
< Schade.
< Sehr enttäuschend.
< Ärgerlich.
= der Artikel kam beschädigt an
= die Lampe war kaputt
= der Tisch war zerkratzt
= die Verpackung war kaputt und die Ware beschädigt
= der Spiegel hatte einen Sprung
+ und die Rücksendung hat ewig gedauert
+ und der Ersatz ist noch nicht da
> Bitte besser verpacken.
> Sehr enttäuschend.

# de damaged_item/mixed
< Insgesamt okay.
= ein Teil war beschädigt, der Ersatz kam aber schnell
= ein kleiner Kratzer, der Umtausch war einfach
= die Verpackung war beschädigt, das Produkt zum Glück kaum
> Danke für den schnellen Ersatz.

# de billing_error
< Ärgerlich.
< Nicht in Ordnung.
< Schon wieder.
= mir wurde doppelt abgebucht
= die Rechnung war falsch
= mir wurde zu viel berechnet
= ich warte immer noch auf meine Erstattung
= auf der Rechnung stand ein falscher Betrag
= die Rechnung zeigt den falschen Tarif
+ und niemand konnte mir das erklären
+ schon zum zweiten Mal
> Bitte prüfen Sie Ihre Rechnungen.
> Sehr ärgerlich.

# de billing_error/mixed
< Sonst gut.
= die Rechnung war einmal falsch, wurde aber schnell korrigiert
= doppelt abgebucht, aber die Erstattung kam schnell
= ein Fehler auf der Rechnung, sonst alles gut

# de repeat_contact
< Unglaublich.
< Nervig.
< Schade.
= ich musste schon zum dritten Mal anrufen
= niemand hat das Problem gelöst
= ich wurde ständig weiterverbunden
= ich habe {mal} angerufen und es ist immer noch nicht erledigt
= ich musste alles immer wieder erklären
= der versprochene Rückruf kam nie
+ und jeder sagt etwas anderes
> Das kostet mich Nerven.
> Bitte beim ersten Mal lösen.

# de repeat_contact/mixed
< Jetzt passt es.
= erst beim zweiten Anruf wurde es gelöst
= ich musste nochmal anrufen, jetzt ist alles gut
= der zweite Mitarbeiter konnte helfen

# de long_wait
< Viel zu langsam.
< Schade.
< Unzumutbar.
= ich war {minuten} Minuten in der Warteschleife
= ich habe {minuten} Minuten gewartet, bis jemand abnahm
= die Wartezeit war viel zu lang
= {minuten} Minuten Warteschleife für eine einfache Frage
= im Chat habe ich {minuten} Minuten gewartet
+ und dann wurde aufgelegt
> Mehr Personal bitte.
> So nicht.

# de long_wait/mixed
< Am Ende gut.
= lange Wartezeit, aber dann sehr kompetente Hilfe
= nach {minuten} Minuten Warten war die Beraterin sehr nett
= die Warteschleife war lang, das Ergebnis gut

# de positive
< Danke!
< Super.
= sehr freundliches Personal
= die Lieferung war schnell
= tolle Qualität
= alles hat reibungslos geklappt
= die App ist sehr einfach zu bedienen
= der Fahrer war sehr nett
= das Sofa ist wunderschön
> Gerne wieder.
> Weiter so!

# de neutral
= war in Ordnung
= nichts Besonderes
= ganz okay
= wie erwartet
= geht so
> Mal sehen.

# de negative
< Schade.
= zu teuer
= die Webseite ist langsam
= die Qualität ist nicht mehr so gut
= die App stürzt ständig ab
= das Formular hat nicht funktioniert
= die Antwort war wenig hilfreich
> Bitte verbessern.

# fr late_delivery
< Dommage.
< Très déçu.
< Pas terrible.
= la livraison est arrivée avec {jours} de retard
= j'ai attendu {jours} de plus que prévu
= mon colis avait {jours} de retard
= la date de livraison a été dépassée, {jours} de retard
= le canapé est arrivé {jours} après la date promise
+ et personne ne m'a prévenu
+ sans aucune information
> Merci d'améliorer les délais.
> Inacceptable.
> Très agaçant.

# fr late_delivery/mixed
< Globalement correct.
= livraison en retard de {jours}, mais le produit est très beau
= un peu de retard, sinon tout va bien
= malgré le retard, je suis satisfait
= la livraison a pris du retard mais le livreur était aimable

# fr damaged_item
< Dommage.
< Très déçu.
= l'article est arrivé abîmé
= la lampe était cassée
= la table était rayée
= le colis était écrasé et le produit endommagé
= le miroir était fêlé
+ et le retour a pris des semaines
+ et le remplacement n'est toujours pas arrivé
> Emballez mieux vos produits.
> Très décevant.

# fr damaged_item/mixed
= un article abîmé, mais le remplacement a été rapide
= une petite rayure, l'échange a été simple
= l'emballage était abîmé, le produit presque intact

# fr billing_error
< Pas normal.
< Encore une fois.
= j'ai été facturé deux fois
= la facture était fausse
= on m'a prélevé trop
= j'attends toujours mon remboursement
= le montant de la facture est incorrect
= la facture indique le mauvais abonnement
+ et personne n'a pu m'expliquer
+ pour le deuxième mois de suite
> Vérifiez vos factures.
> Très agaçant.

# fr billing_error/mixed
= une erreur de facture, vite corrigée
= facturé deux fois, mais remboursé rapidement
= une facture fausse, sinon tout va bien

# fr repeat_contact
< Épuisant.
< Incroyable.
= j'ai dû rappeler trois fois
= personne n'a réglé le problème
= on m'a transféré plusieurs fois
= j'ai appelé {fois} et ce n'est toujours pas réglé
= je dois tout réexpliquer à chaque appel
= on ne m'a jamais rappelé
+ et chacun dit autre chose
> Réglez les problèmes du premier coup.

# fr repeat_contact/mixed
= il a fallu un deuxième appel, mais c'est réglé
= j'ai dû rappeler, maintenant ça va
= le deuxième conseiller a su m'aider

# fr long_wait
< Trop lent.
< Dommage.
= {minutes} minutes d'attente au téléphone
= j'ai attendu {minutes} minutes avant de parler à quelqu'un
= l'attente était beaucoup trop longue
= {minutes} minutes dans la file d'attente du chat
= personne n'a répondu pendant {minutes} minutes
+ puis la ligne a coupé
> Embauchez plus de conseillers.
> Inacceptable.

# fr long_wait/mixed
= longue attente, mais conseiller très compétent
= après {minutes} minutes d'attente, une aide efficace
= l'attente était longue, le résultat bon

# fr positive
< Merci !
< Super.
= personnel très aimable
= livraison rapide
= très bonne qualité
= tout s'est bien passé
= l'application est très simple
= le livreur était très sympathique
= le canapé est magnifique
> Je recommande.
> Continuez comme ça !

# fr neutral
= c'était correct
= rien de spécial
= ça va
= comme prévu
= moyen
> On verra.

# fr negative
< Dommage.
= trop cher
= le site est lent
= la qualité a baissé
= l'application plante souvent
= le formulaire ne marchait pas
= la réponse n'était pas très utile
> À améliorer.
"""


def _parse_phrases(text: str) -> dict[tuple[str, str], Phrases]:
    banks: dict[tuple[str, str], dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        mark, _, rest = line.partition(" ")
        if mark == "#":
            language, topic = rest.split()
            current = banks.setdefault(
                (language, topic), {"<": [""], "=": [], "+": [""], ">": [""]}
            )
        elif mark == "^":
            language, topic = rest.split()
            current["<"] += banks[(language, topic)]["<"][1:]
            current[">"] += banks[(language, topic)][">"][1:]
        else:
            current[mark].append(rest)
    return {
        key: Phrases(tuple(b["="]), tuple(b["<"]), tuple(b["+"]), tuple(b[">"]))
        for key, b in banks.items()
    }


PHRASES = _parse_phrases(_PHRASE_TEXT)
_POSITIVE_TOPICS = (
    "positive/friendly_staff",
    "positive/fast_delivery",
    "positive/great_quality",
    "positive/easy_self_service",
)
_NEGATIVE_TOPICS = (
    "negative/price",
    "negative/product_quality",
    "negative/website",
    "negative/support",
)
_NUMBER_WORDS = {
    "en": ("once", "twice", "three times", "four times", "five times"),
    "de": ("einmal", "zweimal", "dreimal", "viermal", "fünfmal"),
    "fr": ("une fois", "deux fois", "trois fois", "quatre fois", "cinq fois"),
}


def _phrases_for(language: str, topic: str) -> Phrases:
    """The bank for a topic; German and French fall back per tone, then to English."""
    if (language, topic) in PHRASES:
        return PHRASES[(language, topic)]
    if (language, topic.split("/")[0]) in PHRASES:
        return PHRASES[(language, topic.split("/")[0])]
    return PHRASES[("en", topic)]


def template_count() -> int:
    """Number of distinct core sentences over all banks (the 'templates' comments vary)."""
    return len({core for bank in PHRASES.values() for core in bank.cores})


def _slots(language: str, days: int, minutes: int, times: int, weeks: int) -> dict[str, str]:
    times_word = _NUMBER_WORDS[language][min(max(times, 1), 5) - 1]
    return {
        "days": "a day" if days == 1 else f"{days} days",
        "tage": "einen Tag" if days == 1 else f"{days} Tage",
        "jours": "un jour" if days == 1 else f"{days} jours",
        "minutes": str(minutes),
        "minuten": str(minutes),
        "times": times_word,
        "mal": times_word,
        "fois": times_word,
        "weeks": f"{weeks} weeks",
    }


def compose_comments(
    rng: np.random.Generator,
    languages: Sequence[str],
    topics: Sequence[str],
    *,
    days: Sequence[int] | np.ndarray | None = None,
    minutes: Sequence[int] | np.ndarray | None = None,
    times: Sequence[int] | np.ndarray | None = None,
) -> list[str]:
    """Compose one comment per (language, topic), drawing the pieces with numpy.

    The numbers fill the slots (days late, minutes waited, number of contacts) so a comment
    matches the respondent's own experience; missing ones are drawn.
    """
    n = len(topics)
    days_a = np.asarray(days) if days is not None else 1 + rng.poisson(C.LATE_DAYS_MEAN, n)
    minutes_a = np.asarray(minutes) if minutes is not None else rng.integers(25, 76, n)
    times_a = np.asarray(times) if times is not None else rng.integers(2, 5, n)
    weeks_a = rng.integers(2, 5, n)
    lang_a = np.asarray(languages, object)
    topic_a = np.asarray(topics, object)
    out = [""] * n
    for language, topic in sorted(set(zip(languages, topics, strict=True))):
        idx = np.flatnonzero((lang_a == language) & (topic_a == topic))
        bank = _phrases_for(language, topic)
        k = len(idx)
        pieces = zip(
            idx.tolist(),
            rng.integers(0, len(bank.openers), k).tolist(),
            rng.integers(0, len(bank.cores), k).tolist(),
            rng.integers(0, len(bank.details), k).tolist(),
            rng.integers(0, len(bank.closers), k).tolist(),
            strict=True,
        )
        for i, o, c, d, z in pieces:
            slots = _slots(
                language, int(days_a[i]), int(minutes_a[i]), int(times_a[i]), int(weeks_a[i])
            )
            detail = bank.details[d]
            body = (bank.cores[c] + (" " + detail if detail else "")).format(**slots)
            opener = bank.openers[o]
            if not opener or opener.endswith((".", "!", "?")):
                body = body[0].upper() + body[1:]
            closer = bank.closers[z]
            out[i] = " ".join(p for p in (opener, body + ".", closer) if p)
    return out


# ============================================================================================
# Names and other small vocabularies
# ============================================================================================

_FIRST_TEXT = {
    "en": "Ana James Olivia Liam Emma Noah Ava Lucas Mia Ethan Sophia Mason Isla Oliver Grace Leo "
    "Chloe Jack Amelia Ryan Hannah Daniel Zoe Samuel Ella David Lily Adam Nora Omar Priya Chen "
    "Aisha Mateo Sara Yusuf Elena Ivan Maya Tom",
    "de": "Jürgen Anna Lukas Lena Felix Marie Jonas Sophie Paul Laura Maximilian Katrin Tobias "
    "Julia Stefan Sabine Florian Jana Matthias Birgit",
    "fr": "François Camille Louis Léa Hugo Chloé Jules Manon Théo Inès Antoine Élodie Nicolas "
    "Margaux Julien Céline",
}
_LAST_TEXT = {
    "en": "Silva Smith Jones Taylor Brown Wilson Evans Thomas Johnson Roberts Walker Wright "
    "Robinson Thompson White Hughes Edwards Green Hall Wood Harris Clarke Patel Khan Lewis Young "
    "King Turner Novak Kowalski Rossi Garcia Murphy O'Brien Kim Nguyen",
    "de": "Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Koch Richter "
    "Klein Wolf Schröder Neumann Schwarz Zimmermann Braun Krüger",
    "fr": "Martin Bernard Dubois Thomas Robert Petit Durand Leroy Moreau Simon Laurent Lefèvre "
    "Michel Garnier Faure Rousseau",
}
_FIRST = {k: _words(v) for k, v in _FIRST_TEXT.items()}
_LAST = {k: _words(v) for k, v in _LAST_TEXT.items()}
_CONSUMER_DOMAINS = _words("example.com example.org example.net mailbox.example post.example")
_COMPANY_A = _words(
    "hansen oakridge lindqvist greenleaf bauer northgate riverside blueberry atlas meridian "
    "harbour kestrel summit juniper falk brightwater elm copper silverline maple"
)
_COMPANY_B = _words("interiors studio design hotels offices living group works properties cafe")
_TRANSLIT = str.maketrans(
    {
        "ä": "ae",
        "ö": "oe",
        "ü": "ue",
        "ß": "ss",
        "é": "e",
        "è": "e",
        "ë": "e",
        "ç": "c",
        "É": "e",
        "'": "",
    }
)
_TIMEZONES = {
    "en": ("Europe/Berlin Europe/London Europe/Dublin Europe/Amsterdam", (0.55, 0.2, 0.1, 0.15)),
    "de": ("Europe/Berlin Europe/Vienna Europe/Zurich", (0.8, 0.1, 0.1)),
    "fr": ("Europe/Paris Europe/Brussels", (0.8, 0.2)),
}
_LOCALES = {"en": "en-GB", "de": "de-DE", "fr": "fr-FR"}
# German numbering: consumers have mobiles (015x/016x/017x, 8 digits), businesses landlines.
_MOBILE_PREFIXES = _words("151 152 157 160 162 170 171 172 176")
_LANDLINE_AREAS = _words("30 40 89 69 221 211 711")
# How often each written form of an email / phone shows up in an event (see _email_forms).
_EMAIL_FORM_P = (0.78, 0.10, 0.03, 0.05, 0.04)  # canonical, Title.Case, UPPER, "  lead", "trail "
_PHONE_FORM_P = (0.30, 0.30, 0.15, 0.15, 0.10)  # +49 151 .., 0151 .., (0151) ..-.., +49151.., 0151/
_PAGES = _words(
    "/ /sofas /beds /kitchen /lighting /outdoor /sale /inspiration /stores /help/delivery "
    "/help/returns /account"
)
_PRODUCTS = _words(
    "sofa-oslo-3-seater bed-bergen-160 table-fjord-oak chair-lund lamp-aurora rug-sahara-200 "
    "shelf-nordic-5 mirror-round-80 desk-studio wardrobe-kiel cushion-linen-set lounger-garden "
    "pan-set-steel duvet-cloud stool-bar-oak"
)
_REFERRERS = ("direct", "search", "email", "social")
# The first five are everyday questions, the last three follow a friction.
_TICKET_TOPICS = _words(
    "order_status product_question account returns assembly late_delivery damaged_item "
    "billing_error"
)
_SELF_SERVICE_TASKS = _words(
    "change_address reschedule_delivery track_order update_payment download_invoice change_plan"
)
_DAMAGE_KINDS = ("scratched", "broken", "dented", "crushed_box", "torn")
_BILLING_ERRORS = ("charged_twice", "wrong_amount", "wrong_plan")
_SALES_OUTCOMES = ("quote_sent", "follow_up", "no_answer", "order_expected")
_CANCEL_REASONS = {
    "late_delivery": "delivery_problems",
    "damaged_item": "product_damaged",
    "billing_error": "billing_problems",
    "repeat_contact": "unresolved_issue",
    "long_wait": "poor_service",
}
_OTHER_CANCEL_REASONS = ("price", "moving", "no_longer_needed", "other")


# ============================================================================================
# Small helpers
# ============================================================================================


@dataclass(frozen=True)
class _Window:
    months: int
    start: int  # epoch seconds: first second of the first month
    end: int  # epoch seconds: causal.WINDOW_END
    month_starts: np.ndarray

    @property
    def span(self) -> int:
        return self.end - self.start


def _window(months: int) -> _Window:
    year, month = C.WINDOW_END.year, C.WINDOW_END.month
    starts: list[int] = []
    for _ in range(months):
        starts.append(int(datetime(year, month, 1, tzinfo=UTC).timestamp()))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    starts.reverse()
    return _Window(months, starts[0], int(C.WINDOW_END.timestamp()), np.array(starts, np.int64))


def _iso(t: int) -> str:
    return datetime.fromtimestamp(int(t), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso_array(t: np.ndarray) -> np.ndarray:
    return np.char.add(np.datetime_as_string(t.astype("datetime64[s]"), unit="s"), "Z")


def _subset(table: Table, mask: np.ndarray) -> Table:
    return {k: v[mask] for k, v in table.items()}


def _expand(counts: np.ndarray) -> np.ndarray:
    """Customer index repeated by count: one row per thing a customer did."""
    return np.repeat(np.arange(len(counts)), counts)


def _between(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray | int) -> np.ndarray:
    """Uniform integer seconds in [lo, hi]."""
    return lo + (rng.random(len(lo)) * np.maximum(hi - lo, 0)).astype(np.int64)


def _seconds(rng: np.random.Generator, n: int, lo: float, hi: float) -> np.ndarray:
    return (lo + rng.random(n) * (hi - lo)).astype(np.int64)


def _by(mapping: dict[str, float], keys: Sequence[str], codes: np.ndarray) -> np.ndarray:
    """Per-row value of a per-category constant (e.g. a rate per segment)."""
    return np.array([mapping.get(k, 1.0) for k in keys], np.float64)[codes]


def _clip_score(latent: np.ndarray, lo: int, hi: int) -> np.ndarray:
    return np.clip(np.rint(latent), lo, hi).astype(np.int64)


def _unique_ints(rng: np.random.Generator, n: int, low: int, high: int) -> np.ndarray:
    """n distinct random integers in [low, high), redrawing the few collisions."""
    values = rng.integers(low, high, n)
    while True:
        _, first = np.unique(values, return_index=True)
        dup = np.ones(n, bool)
        dup[first] = False
        if not dup.any():
            return values
        values[dup] = rng.integers(low, high, int(dup.sum()))


def _take(pool: Sequence[str], codes: np.ndarray) -> pa.Array:
    return pa.array(list(pool), pa.string()).take(pa.array(codes))


def _json_piece(value: Any) -> Any:
    """A column (or constant) as JSON text, built with pyarrow rather than per row."""
    if isinstance(value, pa.Array):  # strings (our values never need escaping)
        return pc.binary_join_element_wise('"', value, '"', "")
    if isinstance(value, np.ndarray):
        if value.dtype == np.bool_:
            return pc.if_else(pa.array(value), "true", "false")
        if np.issubdtype(value.dtype, np.floating):
            return pa.array(np.round(value, 2)).cast(pa.string())
        if np.issubdtype(value.dtype, np.integer):
            return pa.array(value).cast(pa.string())
        return _json_piece(pa.array(value.astype(object), pa.string()))
    return json.dumps(value)


def _props(n: int, **fields: Any) -> pa.Array:
    """One JSON object per row from columns and constants: _props(n, order_id=ids, ...)."""
    pieces: list[Any] = []
    for i, (key, value) in enumerate(fields.items()):
        pieces += [("{" if i == 0 else ", ") + json.dumps(key) + ": ", _json_piece(value)]
    pieces.append("}" if fields else "{}")
    merged: list[Any] = []  # neighbouring constants joined, so pyarrow does less work
    for piece in pieces:
        if isinstance(piece, str) and merged and isinstance(merged[-1], str):
            merged[-1] += piece
        else:
            merged.append(piece)
    if len(merged) == 1:
        return pa.repeat(pa.scalar(merged[0]), n)
    return pc.binary_join_element_wise(*merged, "")


# ============================================================================================
# Stage 1: customers and their identifiers
# ============================================================================================


@dataclass
class _Customers:
    n: int
    key: list[str]
    crm_id: list[str]
    user_id: list[str]
    name: list[str]
    email: list[str]  # canonical (lowercase)
    phone: list[str]  # E.164
    email_forms: pa.Array  # 5 written forms per customer, form-major: form * n + customer
    phone_forms: pa.Array
    segment: np.ndarray  # codes into causal.SEGMENTS, and so on
    region: np.ndarray
    plan: np.ndarray
    language: np.ndarray
    timezone: list[str]
    tenure: np.ndarray
    value: np.ndarray
    start: np.ndarray  # when the customer's activity starts: window start, or acquisition
    new: np.ndarray
    has_app: np.ndarray
    extra_browser: np.ndarray
    app_ios: np.ndarray
    alias: np.ndarray  # customers whose last device is linked by an alias event, not a login
    devices: pa.Array  # slot-major: browser (n), app (n), second browser (n), then the kiosk
    store_shopper: np.ndarray
    kiosk_user: np.ndarray
    bill_day: np.ndarray
    p: dict[str, np.ndarray]  # each friction's probability per opportunity, per customer
    shared: dict[str, list[dict[str, Any]]]


def _email_forms(email: list[str]) -> list[str]:
    """Five written forms: canonical, Title.Case, UPPER, leading and trailing whitespace."""

    def title(e: str) -> str:
        local, _, domain = e.partition("@")
        return ".".join(p[:1].upper() + p[1:] for p in local.split(".")) + "@" + domain.title()

    titled = [title(e) for e in email]
    upper = [e.upper() for e in email]
    return email + titled + upper + ["  " + e for e in email] + [t + " " for t in titled]


def _phones(rng: np.random.Generator, business: np.ndarray) -> tuple[list[str], list[str]]:
    """E.164 numbers and five written forms each (German numbering, unique per customer)."""
    n = len(business)
    numbers = _unique_ints(rng, n, 0, 10**8)
    mobile = rng.integers(0, len(_MOBILE_PREFIXES), n)
    area = rng.integers(0, len(_LANDLINE_AREAS), n)
    parts = [
        (_LANDLINE_AREAS[area[i]], f"{numbers[i] % 10**7:07d}")
        if business[i]
        else (_MOBILE_PREFIXES[mobile[i]], f"{numbers[i]:08d}")
        for i in range(n)
    ]
    e164 = [f"+49{a}{s}" for a, s in parts]
    forms = (
        [f"+49 {a} {s}" for a, s in parts]
        + [f"0{a} {s}" for a, s in parts]
        + [f"(0{a}) {s[:-4]}-{s[-4:]}" for a, s in parts]
        + e164
        + [f"0{a}/{s}" for a, s in parts]
    )
    return e164, forms


def _uuids(rng: np.random.Generator, n: int) -> list[str]:
    """Version-4-shaped device ids (what analytics SDKs use as anonymous ids)."""
    raw = rng.bytes(16 * n).hex()
    out = []
    for i in range(0, 32 * n, 32):
        h = raw[i : i + 32]
        out.append(f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}")
    return out


def _emails(
    rng: np.random.Generator, first: np.ndarray, last: np.ndarray, business: np.ndarray
) -> list[str]:
    """Canonical addresses from a few local-part patterns; businesses use a company domain."""
    n = len(first)
    pattern = rng.choice(4, n, p=(0.6, 0.15, 0.15, 0.10))
    domain = rng.integers(0, len(_CONSUMER_DOMAINS), n)
    comp_a = rng.integers(0, len(_COMPANY_A), n)
    comp_b = rng.integers(0, len(_COMPANY_B), n)
    digits = rng.integers(10, 100, n)
    seen: dict[str, int] = {}
    out: list[str] = []
    for i in range(n):
        f = str(first[i]).translate(_TRANSLIT).lower()
        s = str(last[i]).translate(_TRANSLIT).lower()
        local = (f"{f}.{s}", f"{f}{s}", f"{f[0]}.{s}", f"{f}.{s}{digits[i]}")[pattern[i]]
        if business[i]:
            host = f"{_COMPANY_A[comp_a[i]]}-{_COMPANY_B[comp_b[i]]}.example"
        else:
            host = _CONSUMER_DOMAINS[domain[i]]
        address = f"{local}@{host}"
        if address in seen:  # unique unless shared on purpose (see _plant_shared)
            seen[address] += 1
            address = f"{local}{seen[address]}@{host}"
        seen[address] = 1
        out.append(address)
    return out


def _plant_shared(rng: np.random.Generator, cu: _Customers, phone_forms: list[str]) -> None:
    """Plant the shared identifiers the identity guard rails should catch (documented counts)."""
    n = cu.n
    order = [int(i) for i in rng.permutation(n)]
    # Prefer consumers (families); a tiny all-business company falls back to anyone.
    consumers = [i for i in order if cu.segment[i] == 0] + [i for i in order if cu.segment[i]]
    n_email = max(1, n // C.CUSTOMERS_PER_SHARED_EMAIL)
    for j in range(n_email):  # a family email used by two people
        a, b = consumers[2 * j], consumers[2 * j + 1]
        cu.email[b] = cu.email[a]
        cu.shared["emails"].append({"value": cu.email[a], "customer_keys": [cu.key[a], cu.key[b]]})
    used = set(consumers[: 2 * n_email])
    pool = [i for i in order if cu.segment[i] != 0 and i not in used]
    pool += [i for i in order if cu.segment[i] == 0 and i not in used]
    size = C.SHARED_PHONE_SIZE
    for j in range(max(1, n // C.CUSTOMERS_PER_SHARED_PHONE)):  # an office switchboard
        group = pool[j * size : (j + 1) * size]
        for b in group[1:]:
            cu.phone[b] = cu.phone[group[0]]
            for form in range(5):
                phone_forms[form * n + b] = phone_forms[form * n + group[0]]
        keys = [cu.key[i] for i in group]
        cu.shared["phones"].append({"value": cu.phone[group[0]], "customer_keys": keys})
        used |= set(group)
    # A store kiosk tablet: its device id shows up on the kiosk orders of several customers.
    kiosk = [i for i in reversed(order) if i not in used][: max(3, n // C.CUSTOMERS_PER_KIOSK_USER)]
    cu.kiosk_user[kiosk] = True
    cu.store_shopper |= cu.kiosk_user


def _make_customers(rng: np.random.Generator, n: int, win: _Window) -> _Customers:
    seg = rng.choice(len(C.SEGMENTS), n, p=C.SEGMENT_SHARE)
    region = rng.choice(len(C.REGIONS), n, p=C.REGION_SHARE)
    plan = np.zeros(n, np.int64)
    for s, segment in enumerate(C.SEGMENTS):
        m = seg == s
        plan[m] = rng.choice(len(C.PLANS), int(m.sum()), p=C.PLAN_SHARE[segment])
    lang = rng.choice(len(C.LANGUAGES), n, p=C.LANGUAGE_SHARE)
    new = rng.random(n) < C.NEW_CUSTOMER_SHARE
    tenure = rng.geometric(1 / C.TENURE_MEAN_MONTHS, n)
    tenure = np.where(new, 0, np.minimum(tenure, C.TENURE_MAX_MONTHS))
    # New customers are acquired during the first 70% of the window.
    acquired = win.start + (rng.random(n) * 0.7 * win.span).astype(np.int64)
    start = np.where(new, acquired, win.start).astype(np.int64)
    median = _by(C.VALUE_MEDIAN, C.SEGMENTS, seg)
    value = np.round(median * np.exp(C.VALUE_SIGMA * rng.standard_normal(n)), 2)

    first, last, tz = (np.empty(n, object) for _ in range(3))
    for li, language in enumerate(C.LANGUAGES):
        m = lang == li
        k = int(m.sum())
        first[m] = np.array(_FIRST[language], object)[rng.integers(0, len(_FIRST[language]), k)]
        last[m] = np.array(_LAST[language], object)[rng.integers(0, len(_LAST[language]), k)]
        zones, zone_p = _TIMEZONES[language]
        tz[m] = np.array(zones.split(), object)[rng.choice(len(zone_p), k, p=zone_p)]
    business = seg != 0
    email = _emails(rng, first, last, business)
    phone, phone_forms = _phones(rng, business)
    width = max(6, len(str(n)))
    has_app = rng.random(n) < C.APP_USER_SHARE
    extra_browser = rng.random(n) < C.EXTRA_BROWSER_SHARE
    multi = np.flatnonzero(has_app | extra_browser)
    alias = np.zeros(n, bool)
    alias[rng.choice(multi, min(len(multi), max(1, round(C.ALIAS_SHARE * n))), replace=False)] = 1
    p = {
        f.key: f.rate
        * _by(f.segment_multiplier, C.SEGMENTS, seg)
        * _by(f.region_multiplier, C.REGIONS, region)
        for f in C.FRICTIONS
    }
    cu = _Customers(
        n=n,
        key=[f"C{i + 1:0{width}d}" for i in range(n)],
        crm_id=[f"CRM-{v:07d}" for v in rng.permutation(n) + 1_000_001],
        user_id=[f"acct-{v:08d}" for v in _unique_ints(rng, n, 10**7, 10**8)],
        name=[f"{a} {b}" for a, b in zip(first, last, strict=True)],
        email=email,
        phone=phone,
        email_forms=pa.array([]),
        phone_forms=pa.array([]),
        segment=seg,
        region=region,
        plan=plan,
        language=lang,
        timezone=[str(z) for z in tz],
        tenure=tenure,
        value=value,
        start=start,
        new=new,
        has_app=has_app,
        extra_browser=extra_browser,
        app_ios=rng.random(n) < 0.55,
        alias=alias,
        devices=pa.array(_uuids(rng, 3 * n + 1)),
        store_shopper=rng.random(n) < C.STORE_SHOPPER_SHARE,
        kiosk_user=np.zeros(n, bool),
        bill_day=rng.integers(0, 28, n),
        p=p,
        shared={"emails": [], "phones": [], "devices": []},
    )
    _plant_shared(rng, cu, phone_forms)
    cu.email_forms = pa.array(_email_forms(cu.email))
    cu.phone_forms = pa.array(phone_forms)
    return cu


# ============================================================================================
# Stage 2: activity, frictions and churn
# ============================================================================================


@dataclass
class _Activity:
    campaigns: Table
    sessions: Table
    orders: Table
    app: Table
    selfservice: Table
    tickets: Table
    bills: Table
    sales_calls: Table
    renewals: Table
    frictions: Table  # cust, kind (index into causal.FRICTIONS), t
    churned: np.ndarray
    active_end: np.ndarray  # cancellation time for churners, window end for the others
    cancel_reason: list[str]


def _uniform(rng: np.random.Generator, cu: _Customers, end: int, rate: np.ndarray) -> Table:
    """Poisson(rate) things per customer at uniform times over the customer's window."""
    cust = _expand(rng.poisson(rate))
    return {"cust": cust, "t": _between(rng, cu.start[cust], end)}


def _orders(rng: np.random.Generator, cu: _Customers, win: _Window, months: np.ndarray) -> Table:
    end = win.end
    per_month = _by(C.ORDERS_PER_MONTH, C.SEGMENTS, cu.segment)
    counts = rng.poisson(per_month * months)
    counts = np.where(cu.new, np.maximum(counts, 1), counts) + cu.kiosk_user
    oc = _expand(counts)
    m = len(oc)
    first = np.cumsum(counts) - counts
    t = _between(rng, cu.start[oc], end)
    # A new customer's journey leads to a first order within two weeks of acquisition.
    nf = first[cu.new & (counts > 0)]
    t[nf] = np.minimum(cu.start[oc[nf]] + _seconds(rng, len(nf), 0.5 * DAY, 14 * DAY), end)
    # A kiosk user's last order is placed at the store kiosk, early in their window.
    kiosk = np.zeros(m, bool)
    kl = (first + counts - 1)[cu.kiosk_user]
    kiosk[kl] = True
    t[kl] = _between(rng, cu.start[oc[kl]], cu.start[oc[kl]] + (end - cu.start[oc[kl]]) // 5)
    store = (cu.store_shopper[oc] & (rng.random(m) < C.STORE_ORDER_SHARE)) | kiosk
    home = ~store | (rng.random(m) < C.STORE_ORDER_DELIVERED)
    basket = cu.value[oc] / (12 * per_month[oc])
    amount = np.maximum(np.round(basket * np.exp(0.5 * rng.standard_normal(m) - 0.125), 2), 5.0)
    lo, hi = C.PROMISED_DELIVERY_DAYS
    promised_days = rng.integers(lo, hi + 1, m)
    promised_t = t + promised_days * DAY
    late = home & (rng.random(m) < cu.p["late_delivery"][oc])
    late_days = np.where(late, 1 + rng.poisson(C.LATE_DAYS_MEAN, m), 0)
    delivered_t = promised_t + late_days * DAY - _seconds(rng, m, 0, DAY / 2)
    delivered = home & (delivered_t <= end)
    late &= promised_t <= end  # a delay exists once the promised date has passed
    damage_t = delivered_t + _seconds(rng, m, HOUR, 36 * HOUR)
    damaged = delivered & (rng.random(m) < cu.p["damaged_item"][oc]) & (damage_t <= end)
    return {
        "cust": oc,
        "t": t,
        "store": store,
        "kiosk": kiosk,
        "home": home,
        "amount": amount,
        "items": 1 + rng.poisson(0.7, m),
        "promised_days": promised_days,
        "promised_t": promised_t,
        "late": late,
        "late_days": np.where(late, late_days, 0),
        "delivered": delivered,
        "delivered_t": delivered_t,
        "damaged": damaged,
        "damage_t": damage_t,
        "damage_kind": rng.integers(0, len(_DAMAGE_KINDS), m),
    }


def _bills(rng: np.random.Generator, cu: _Customers, win: _Window) -> Table:
    """One subscription invoice per month on the customer's billing day."""
    cust = np.repeat(np.arange(cu.n), win.months)
    t = np.tile(win.month_starts, cu.n) + cu.bill_day[cust] * DAY + 6 * HOUR
    keep = (t >= cu.start[cust]) & (t <= win.end)
    cust, t = cust[keep], t[keep]
    m = len(cust)
    fee = _by(C.MONTHLY_FEE, C.PLANS, cu.plan[cust])
    amount = np.round(fee * _by(C.SEGMENT_FEE_FACTOR, C.SEGMENTS, cu.segment[cust]), 2)
    error_t = t + _seconds(rng, m, DAY, 5 * DAY)
    error = (rng.random(m) < cu.p["billing_error"][cust]) & (error_t <= win.end)
    error_kind = rng.integers(0, len(_BILLING_ERRORS), m)
    share = np.round(amount * (0.1 + 0.5 * rng.random(m)), 2)
    return {
        "cust": cust,
        "t": t,
        "amount": amount,
        "month": np.searchsorted(win.month_starts, t, side="right") - 1,
        "paid_t": t + _seconds(rng, m, DAY, 10 * DAY),
        "error": error,
        "error_t": error_t,
        "error_kind": error_kind,
        "overcharge": np.where(error_kind == 0, amount, share),  # charged twice: the full amount
        "refund_t": error_t + _seconds(rng, m, 3 * DAY, 20 * DAY),
    }


def _tickets(
    rng: np.random.Generator,
    cu: _Customers,
    win: _Window,
    months: np.ndarray,
    orders: Table,
    bills: Table,
) -> Table:
    """Support contacts: everyday ones, ones a friction causes, and the repeats."""
    end = win.end
    rate = _by(C.TICKETS_PER_MONTH, C.SEGMENTS, cu.segment) * months
    everyday = _uniform(rng, cu, end, rate)
    cust, t = [everyday["cust"]], [everyday["t"]]
    topic = [rng.integers(0, 5, len(everyday["t"]))]
    caused = {  # topic: (friction happened, when, ticket delay range)
        "late_delivery": (orders, "late", "promised_t", (2 * HOUR, 2 * DAY)),
        "damaged_item": (orders, "damaged", "damage_t", (10 * MINUTE, DAY)),
        "billing_error": (bills, "error", "error_t", (HOUR, 3 * DAY)),
    }
    for name, (source, flag, when, (lo, hi)) in caused.items():
        pick = source[flag] & (rng.random(len(source[flag])) < C.TICKET_AFTER_FRICTION[name])
        k = int(pick.sum())
        cust.append(source["cust"][pick])
        t.append(source[when][pick] + _seconds(rng, k, lo, hi))
        topic.append(np.full(k, _TICKET_TOPICS.index(name)))
    gen: Table = {"cust": np.concatenate(cust), "open_t": np.concatenate(t)}
    gen["topic"] = np.concatenate(topic)
    gen = _subset(gen, gen["open_t"] <= end)
    m = len(gen["cust"])
    gen |= {"phone": rng.random(m) < C.PHONE_TICKET_SHARE, "contact": np.ones(m, np.int64)}
    gen["prev"] = np.full(m, -1)

    done: list[Table] = []
    offset = 0
    wait_lo, wait_hi = C.LONG_WAIT_MINUTES
    while len(gen["cust"]):  # one round per contact number (at most MAX_CONTACTS)
        m, c, phone = len(gen["cust"]), gen["cust"], gen["phone"]
        by_channel = C.LONG_WAIT_CHANNEL_MULTIPLIER
        p_long = cu.p["long_wait"][c] * np.where(phone, by_channel["phone"], by_channel["chat"])
        long = rng.random(m) < p_long
        medians = C.NORMAL_WAIT_MEDIAN_MINUTES
        median = np.where(phone, medians["phone"], medians["chat"])
        normal = np.round(np.clip(median * np.exp(0.6 * rng.standard_normal(m)), 0.2, 20.0), 1)
        wait = np.where(long, rng.integers(wait_lo, wait_hi + 1, m), normal)
        handle = np.round(np.clip(8 * np.exp(0.5 * rng.standard_normal(m)), 2, 90), 1)
        close_t = gen["open_t"] + ((wait + handle) * MINUTE).astype(np.int64)
        unresolved = rng.random(m) < cu.p["repeat_contact"][c]
        unresolved &= gen["contact"] < C.MAX_CONTACTS
        gen |= {"long": long, "wait": wait, "handle": handle, "close_t": close_t}
        gen |= {"unresolved": unresolved, "id": offset + np.arange(m)}
        done.append(gen)
        offset += m
        # The customer comes back about the same problem within two weeks.
        again = _subset(gen, unresolved)
        k = len(again["cust"])
        window = C.REPEAT_WITHIN_DAYS * DAY
        gen = {
            "cust": again["cust"],
            "open_t": again["close_t"] + _seconds(rng, k, 2 * HOUR, window),
            "topic": again["topic"],
            "phone": np.where(rng.random(k) < 0.7, again["phone"], ~again["phone"]),
            "contact": again["contact"] + 1,
            "prev": again["id"],
        }
        gen = _subset(gen, gen["open_t"] <= end)
    tickets = {k: np.concatenate([d[k] for d in done]) for k in done[0]}
    tickets["closed"] = tickets["close_t"] <= end
    tickets["logged_in"] = rng.random(len(tickets["cust"])) >= C.LOGGED_OUT_CHAT_SHARE
    return tickets


def _frictions(orders: Table, bills: Table, tickets: Table) -> Table:
    """Every friction met, in causal.FRICTIONS order: who, which, when."""
    repeat = tickets["contact"] >= 2
    parts = [
        (orders["cust"][orders["late"]], orders["promised_t"][orders["late"]]),
        (orders["cust"][orders["damaged"]], orders["damage_t"][orders["damaged"]]),
        (bills["cust"][bills["error"]], bills["error_t"][bills["error"]]),
        (tickets["cust"][repeat], tickets["open_t"][repeat]),
        (tickets["cust"][tickets["long"]], tickets["open_t"][tickets["long"]]),
    ]
    return {
        "cust": np.concatenate([p[0] for p in parts]),
        "kind": np.concatenate([np.full(len(p[0]), i) for i, p in enumerate(parts)]),
        "t": np.concatenate([p[1] for p in parts]),
    }


def _churn(
    rng: np.random.Generator, cu: _Customers, fr: Table, months: np.ndarray, end: int
) -> tuple[np.ndarray, np.ndarray]:
    """Who churns (log-odds raised by each friction met) and when: after their last friction."""
    met = np.zeros((cu.n, len(C.FRICTIONS)), bool)
    met[fr["cust"], fr["kind"]] = True
    hazard = _by(C.CHURN_MONTHLY_HAZARD, C.SEGMENTS, cu.segment)
    p0 = 1 - (1 - hazard) ** months
    logit = np.log(p0 / (1 - p0)) + _by(C.CHURN_PLAN_LOG_ODDS, C.PLANS, cu.plan)
    logit += met @ np.array([f.churn_log_odds for f in C.FRICTIONS])
    churned = rng.random(cu.n) < 1 / (1 + np.exp(-logit))
    last = cu.start.copy()
    np.maximum.at(last, fr["cust"], fr["t"])
    lo = np.maximum(last + HOUR, cu.start + (end - cu.start) // 4)
    cancel = np.minimum(_between(rng, np.minimum(lo, end), end), end)
    return churned, np.where(churned, cancel, end)


def _make_activity(rng: np.random.Generator, cu: _Customers, win: _Window) -> _Activity:
    n, end = cu.n, win.end
    months = (end - cu.start) / MONTH

    # Campaign emails; a new customer's journey starts with one they click.
    campaigns = _uniform(rng, cu, end, C.CAMPAIGN_EMAILS_PER_MONTH * months)
    newc = np.flatnonzero(cu.new)
    campaigns["cust"] = np.concatenate([campaigns["cust"], newc])
    campaigns["t"] = np.concatenate([campaigns["t"], cu.start[newc]])
    m = len(campaigns["t"])
    campaigns["clicked"] = (rng.random(m) < C.CAMPAIGN_CLICK_RATE) | (np.arange(m) >= m - len(newc))
    campaigns["k"] = rng.integers(0, 4, m)

    # Web sessions: organic ones and the ones a campaign click starts.
    organic = _uniform(rng, cu, end, C.WEB_SESSIONS_PER_MONTH * months)
    clicked = campaigns["clicked"]
    k = int(clicked.sum())
    sc = np.concatenate([organic["cust"], campaigns["cust"][clicked]])
    click_t = campaigns["t"][clicked] + _seconds(rng, k, MINUTE, 90 * MINUTE)
    st = np.concatenate([organic["t"], click_t])
    own = rng.choice([0, 1, 3], len(organic["t"]), p=(0.45, 0.45, 0.1))  # direct, search, social
    referrer = np.concatenate([own, np.full(k, 2)])  # email
    second = cu.extra_browser[sc] & (rng.random(len(sc)) < 0.3)
    sessions: Table = {"cust": sc, "t": st, "slot": np.where(second, 2, 0), "referrer": referrer}
    sessions["pages"] = 1 + rng.poisson(C.EXTRA_PAGES_PER_SESSION, len(sc))
    sessions = _subset(sessions, sessions["t"] <= end)

    orders = _orders(rng, cu, win, months)
    bills = _bills(rng, cu, win)
    tickets = _tickets(rng, cu, win, months, orders, bills)
    app = _uniform(rng, cu, end, C.APP_SESSIONS_PER_MONTH * months * cu.has_app)
    selfservice = _uniform(rng, cu, end, C.SELF_SERVICE_PER_MONTH * months)
    xc = selfservice["cust"]
    in_app = cu.has_app[xc] & (rng.random(len(xc)) < C.SELF_SERVICE_IN_APP)
    second = cu.extra_browser[xc] & (rng.random(len(xc)) < 0.3)
    selfservice |= {"in_app": in_app, "slot": np.where(in_app, 1, np.where(second, 2, 0))}
    selfservice["task"] = rng.integers(0, len(_SELF_SERVICE_TASKS), len(xc))
    call_rate = _by(C.SALES_CALLS_PER_MONTH, C.SEGMENTS, cu.segment) * months
    sales_calls = _uniform(rng, cu, end, call_rate)
    sales_calls["outcome"] = rng.integers(0, len(_SALES_OUTCOMES), len(sales_calls["t"]))
    sales_calls["minutes"] = rng.integers(5, 46, len(sales_calls["t"]))
    # The annual subscription renews in the customer's anniversary month.
    offset = (12 - cu.tenure % 12) % 12
    rc = np.flatnonzero(~cu.new & (offset < win.months))
    rt = win.month_starts[np.minimum(offset[rc], win.months - 1)] + cu.bill_day[rc] * DAY + 2 * HOUR
    renewals: Table = {"cust": rc[rt <= end], "t": rt[rt <= end]}

    churned, active_end = _churn(rng, cu, _frictions(orders, bills, tickets), months, end)

    # A churner starts nothing after cancelling (their frictions all lie before, by construction).
    def active(table: Table, key: str = "t") -> Table:
        return _subset(table, table[key] <= active_end[table["cust"]])

    campaigns, sessions, app, selfservice = map(active, (campaigns, sessions, app, selfservice))
    orders, bills, sales_calls, renewals = map(active, (orders, bills, sales_calls, renewals))
    kept = tickets["open_t"] <= active_end[tickets["cust"]]
    renumber = np.full(len(kept), -1)
    renumber[kept] = np.arange(int(kept.sum()))
    tickets = _subset(tickets, kept)
    tickets["prev"] = np.where(tickets["prev"] >= 0, renumber[tickets["prev"]], -1)
    tickets["id"] = np.arange(len(tickets["cust"]))
    fr = _frictions(orders, bills, tickets)

    # Cancellation reason: the friction met most recently, else an everyday reason.
    reason = [_OTHER_CANCEL_REASONS[i] for i in rng.integers(0, 4, n)]
    order = np.lexsort((fr["t"], fr["cust"]))
    by_cust = fr["cust"][order]
    last_of_customer = order[np.r_[by_cust[1:] != by_cust[:-1], True]] if len(order) else order
    for i in last_of_customer.tolist():
        c = int(fr["cust"][i])
        if churned[c]:
            reason[c] = _CANCEL_REASONS[C.FRICTIONS[int(fr["kind"][i])].key]
    return _Activity(
        campaigns,
        sessions,
        orders,
        app,
        selfservice,
        tickets,
        bills,
        sales_calls,
        renewals,
        fr,
        churned,
        active_end,
        reason,
    )


# ============================================================================================
# Stage 3: survey invitations, answers and what the comments will be about
# ============================================================================================

SURVEY_KEYS = ("relationship_nps", "delivery_csat", "support_csat", "self_service_ces")
_TRIGGER_KINDS = ("none", "delivery", "ticket", "selfservice")  # what trigger_event_id points at


@dataclass
class _Surveys:
    invites: Table  # cust, t, survey, touchpoint
    responses: Table  # sorted by submission time; see _answers


def _invite_and_answer(
    rng: np.random.Generator, survey: str, trig_t: np.ndarray, end: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Who is invited (when: a few hours after the trigger) and who answers (when)."""
    m = len(trig_t)
    invite_t = trig_t + _seconds(rng, m, HOUR, 6 * HOUR)
    invited = (rng.random(m) < C.SURVEY_INVITE_RATE[survey]) & (invite_t <= end)
    delay = (rng.exponential(C.RESPONSE_DELAY_HOURS, m) * HOUR).astype(np.int64)
    submit_t = invite_t + MINUTE + delay
    answered = invited & (rng.random(m) < C.SURVEY_RESPONSE_RATE[survey]) & (submit_t <= end)
    return invited, invite_t, answered, submit_t


def _tone(score: np.ndarray, scale: str) -> np.ndarray:
    """0 negative, 1 neutral, 2 positive, by the usual cut-offs of each scale."""
    lo, hi = {"nps": (6, 8), "csat": (2, 3), "ces": (3, 5)}[scale]
    return np.where(score <= lo, 0, np.where(score <= hi, 1, 2))


def _topics(
    rng: np.random.Generator,
    tone: np.ndarray,
    flags: np.ndarray,
    kinds: Sequence[str],
    positive: Sequence[str],
    negative: Sequence[str],
) -> np.ndarray:
    """What a comment is about: a friction met (most of the time), else a topic of its tone."""
    m = len(tone)
    topic = np.full(m, "neutral", object)
    pos, neg = tone == 2, tone == 0
    topic[pos] = np.array(positive, object)[rng.integers(0, len(positive), int(pos.sum()))]
    topic[neg] = np.array(negative, object)[rng.integers(0, len(negative), int(neg.sum()))]
    if flags.shape[1]:
        score = np.where(flags, rng.random(flags.shape), -1.0)  # a random one of those met
        pick = np.where(flags.any(axis=1), score.argmax(axis=1), -1)
        mention = (pick >= 0) & (rng.random(m) < C.FRICTION_MENTION_RATE)
        for i, kind in enumerate(kinds):
            sel = mention & (pick == i)
            topic[sel & neg] = kind
            topic[sel & ~neg] = f"{kind}/mixed"  # a friction named in a milder answer
    return topic


def _met_recently(fr: Table, cust: np.ndarray, t: np.ndarray, memory: int) -> np.ndarray:
    """For each (customer, time): which frictions they met in the `memory` seconds before."""
    scale = np.int64(2**34)  # above any epoch second: (customer, time) sorts as one number
    met = np.zeros((len(cust), len(C.FRICTIONS)), bool)
    for kind in range(len(C.FRICTIONS)):
        sel = fr["kind"] == kind
        keys = np.sort(fr["cust"][sel].astype(np.int64) * scale + fr["t"][sel])
        now = cust.astype(np.int64) * scale + t
        since = np.searchsorted(keys, now - memory, side="left")
        met[:, kind] = np.searchsorted(keys, now, side="left") > since
    return met


def _answers(
    survey: str,
    cust: np.ndarray,
    t: np.ndarray,
    touchpoint: np.ndarray | str,
    trigger: str,
    rows: np.ndarray,
    score: np.ndarray,
    tone: np.ndarray,
    topic: np.ndarray,
    numbers: dict[str, np.ndarray],
) -> Table:
    m = len(cust)
    table: Table = {
        "survey": np.full(m, survey, object),
        "cust": cust,
        "t": t,
        "touchpoint": np.broadcast_to(np.asarray(touchpoint, object), (m,)).copy(),
        "trigger_kind": np.full(m, _TRIGGER_KINDS.index(trigger)),
        "trigger": rows,
        "score": score,
        "tone": tone,
        "topic": topic,
    }
    defaults = {"days": 2, "minutes": 30, "times": 2}
    return table | {k: numbers.get(k, np.full(m, v)) for k, v in defaults.items()}


def _sample_surveys(
    rng: np.random.Generator, cu: _Customers, act: _Activity, win: _Window
) -> _Surveys:
    end = win.end
    invites: list[Table] = []
    answers: list[Table] = []

    def invite(
        survey: str, cust: np.ndarray, trig_t: np.ndarray, tp: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        invited, invite_t, answered, submit_t = _invite_and_answer(rng, survey, trig_t, end)
        k = int(invited.sum())
        invites.append(
            {
                "cust": cust[invited],
                "t": invite_t[invited],
                "touchpoint": tp[invited],
                "survey": np.full(k, survey, object),
            }
        )
        return answered, submit_t[answered]

    def noise(m: int, sd: float) -> np.ndarray:
        return sd * rng.standard_normal(m)

    # Delivery CSAT after order_delivered: late and damaged deliveries score lower.
    o = act.orders
    trig = np.flatnonzero(o["delivered"])
    tp = np.full(len(trig), "delivery", object)
    answered, when = invite("delivery_csat", o["cust"][trig], o["delivered_t"][trig], tp)
    r = trig[answered]
    latent = C.CSAT_BASE_MEAN["delivery_csat"] + noise(len(r), C.CSAT_NOISE_SD)
    latent += o["late"][r] * C.friction("late_delivery").csat_effect
    latent += o["damaged"][r] * C.friction("damaged_item").csat_effect
    score = _clip_score(latent, 1, 5)
    tone = _tone(score, "csat")
    flags = np.stack([o["late"][r], o["damaged"][r]], axis=1)
    topic = _topics(
        rng,
        tone,
        flags,
        ["late_delivery", "damaged_item"],
        ["positive/fast_delivery", "positive/great_quality", "positive/friendly_staff"],
        ["negative/product_quality", "negative/price"],
    )
    numbers = {"days": np.maximum(o["late_days"][r], 1)}
    answers.append(
        _answers(
            "delivery_csat",
            o["cust"][r],
            when,
            "delivery",
            "delivery",
            r,
            score,
            tone,
            topic,
            numbers,
        )
    )

    # Support CSAT after ticket_closed: long waits, unresolved or repeated contacts and tickets
    # about a billing error score lower.
    tk = act.tickets
    trig = np.flatnonzero(tk["closed"])
    tp = np.where(tk["phone"][trig], "support_phone", "support_chat").astype(object)
    answered, when = invite("support_csat", tk["cust"][trig], tk["close_t"][trig], tp)
    r = trig[answered]
    repeat = tk["unresolved"][r] | (tk["contact"][r] >= 2)
    billing = tk["topic"][r] == _TICKET_TOPICS.index("billing_error")
    latent = C.CSAT_BASE_MEAN["support_csat"] + noise(len(r), C.CSAT_NOISE_SD)
    latent += tk["long"][r] * C.friction("long_wait").csat_effect
    latent += repeat * C.friction("repeat_contact").csat_effect
    latent += billing * C.friction("billing_error").csat_effect
    score = _clip_score(latent, 1, 5)
    tone = _tone(score, "csat")
    flags = np.stack([tk["long"][r], repeat, billing], axis=1)
    topic = _topics(
        rng,
        tone,
        flags,
        ["long_wait", "repeat_contact", "billing_error"],
        ["positive/friendly_staff"],
        ["negative/support"],
    )
    numbers = {
        "minutes": np.rint(tk["wait"][r]).astype(np.int64),
        "times": np.maximum(tk["contact"][r], 2),
    }
    answers.append(
        _answers(
            "support_csat",
            tk["cust"][r],
            when,
            tp[answered],
            "ticket",
            r,
            score,
            tone,
            topic,
            numbers,
        )
    )

    # Customer effort after self-service: the web help centre is harder than the app.
    x = act.selfservice
    trig = np.arange(len(x["cust"]))
    tp = np.where(x["in_app"], "mobile_app", "help_center").astype(object)
    answered, when = invite("self_service_ces", x["cust"], x["t"], tp)
    r = trig[answered]
    latent = C.CES_BASE_MEAN + noise(len(r), C.CES_NOISE_SD) + ~x["in_app"][r] * C.CES_WEB_SHIFT
    score = _clip_score(latent, 1, 7)
    tone = _tone(score, "ces")
    topic = _topics(
        rng,
        tone,
        np.zeros((len(r), 0), bool),
        [],
        ["positive/easy_self_service"],
        ["negative/self_service", "negative/website"],
    )
    answers.append(
        _answers(
            "self_service_ces",
            x["cust"][r],
            when,
            tp[answered],
            "selfservice",
            r,
            score,
            tone,
            topic,
            {},
        )
    )

    # Relationship NPS in waves, late in each wave period, to every active customer. The
    # frictions a customer met before answering lower the score.
    waves = max(1, math.ceil(win.months / C.RELATIONSHIP_WAVE_MONTHS))
    length = win.span / waves
    cust = np.tile(np.arange(cu.n), waves)
    wave_end = win.start + ((np.repeat(np.arange(waves), cu.n) + 1) * length).astype(np.int64)
    trig_t = wave_end - (rng.random(len(cust)) * 0.25 * length).astype(np.int64) - 6 * HOUR
    ok = (trig_t >= cu.start[cust] + 7 * DAY) & (trig_t <= act.active_end[cust])
    cust, trig_t = cust[ok], trig_t[ok]
    tp = np.full(len(cust), "campaign_email", object)  # sent like any marketing email
    answered, when = invite("relationship_nps", cust, trig_t, tp)
    rc = cust[answered]
    met = _met_recently(act.frictions, rc, when, C.NPS_MEMORY_DAYS * DAY)
    latent = C.NPS_BASE_MEAN + noise(len(rc), C.NPS_NOISE_SD)
    latent += _by(C.NPS_SEGMENT_SHIFT, C.SEGMENTS, cu.segment[rc])
    latent += _by(C.NPS_PLAN_SHIFT, C.PLANS, cu.plan[rc])
    latent += met @ np.array([f.nps_effect for f in C.FRICTIONS])
    score = _clip_score(latent, 0, 10)
    tone = _tone(score, "nps")
    topic = _topics(rng, tone, met, C.FRICTION_KEYS, _POSITIVE_TOPICS, _NEGATIVE_TOPICS)
    numbers = {
        "days": 1 + rng.poisson(C.LATE_DAYS_MEAN, len(rc)),
        "minutes": rng.integers(25, 76, len(rc)),
        "times": rng.integers(2, 5, len(rc)),
    }
    no_rows = np.full(len(rc), -1)
    answers.append(
        _answers("relationship_nps", rc, when, "", "none", no_rows, score, tone, topic, numbers)
    )

    joined = {k: np.concatenate([a[k] for a in answers]) for k in answers[0]}
    responses = _subset(joined, np.argsort(joined["t"], kind="stable"))
    m = len(responses["t"])
    rate = np.array([C.COMMENT_RATE[k] for k in ("negative", "neutral", "positive")])
    responses["has_comment"] = rng.random(m) < rate[responses["tone"]]
    responses["email_form"] = rng.choice(5, m, p=_EMAIL_FORM_P)
    responses["has_crm"] = rng.random(m) < C.RESPONSE_CRM_ID_RATE
    joined_invites = {k: np.concatenate([i[k] for i in invites]) for k in invites[0]}
    return _Surveys(joined_invites, responses)


# ============================================================================================
# Stage 4: the interaction log
# ============================================================================================

_KINDS = ("track", "identify", "page", "alias")
_TOUCHPOINT_KEYS = tuple(tp.key for tp in C.TOUCHPOINTS)
_TOUCHPOINT_CHANNEL = {tp.key: tp.channel for tp in C.TOUCHPOINTS}
# What each source system puts in `context` ("web" and "app" are per customer, see _Log).
_CONTEXTS = {
    "{}": "{}",
    "esp": '{"source": "email-platform"}',
    "helpdesk": '{"source": "helpdesk"}',
    "billing": '{"source": "billing-system"}',
    "pos": '{"source": "store-pos"}',
    "courier": '{"source": "courier"}',
    "crm": '{"source": "crm"}',
    "survey": '{"source": "survey-tool"}',
    "warehouse": '{"source": "warehouse"}',
}
LOG_COLUMNS = _words(
    "event_id type name timestamp user_id anonymous_id email phone crm_id touchpoint channel "
    "properties context"
)
_LOG_SCHEMA = pa.schema(
    [(c, pa.timestamp("us", tz="UTC") if c == "timestamp" else pa.string()) for c in LOG_COLUMNS]
)
KIOSK = 3  # device slot of the shared store kiosk


@dataclass(frozen=True)
class _Ids:
    """Which identifiers an event carries, and which source system's context."""

    user: bool | np.ndarray = False  # user_id (logged in)
    device: int | np.ndarray = -1  # anonymous_id: 0 browser, 1 app, 2 second browser, 3 kiosk
    email: bool | np.ndarray = False
    phone: bool | np.ndarray = False
    crm: bool | np.ndarray = False
    ctx: str | np.ndarray = "{}"  # a _CONTEXTS key, "web", "app", or per-row context indices


_EMAIL_ONLY = _Ids(email=True, ctx="esp")
_COURIER = _Ids(email=True, phone=True, ctx="courier")
_LOGGED_IN = _Ids(user=True, device=0, email=True, ctx="web")
_BILLING = _Ids(crm=True, ctx="billing")
_BILLING_MAIL = _Ids(crm=True, email=True, ctx="billing")


def _number(prefix: str, t: np.ndarray, start: int) -> pa.Array:
    """Business ids numbered in time order, e.g. NW-100001, T-100002."""
    rank = np.empty(len(t), np.int64)
    rank[np.argsort(t, kind="stable")] = np.arange(len(t))
    return pc.binary_join_element_wise(prefix, pa.array(rank + start).cast(pa.string()), "")


def _event_id(numbers: np.ndarray) -> list[str]:
    return [f"evt_{k:09d}" for k in numbers.tolist()]


class _Log:
    """Collects event blocks column-wise; writes them sorted by time with stable event ids."""

    def __init__(self, cu: _Customers) -> None:
        self.cu = cu
        self.blocks: list[dict[str, Any]] = []
        self.rows = 0
        self.names: dict[str, int] = {}
        web: dict[tuple[str, str], str] = {}
        app: dict[tuple[str, str, bool], str] = {}
        web_ctx, app_ctx = [], []
        for i in range(cu.n):  # a handful of distinct strings, reused
            locale, tz, ios = _LOCALES[C.LANGUAGES[cu.language[i]]], cu.timezone[i], cu.app_ios[i]
            if (locale, tz) not in web:
                lib = {"name": "analytics.js", "version": "5.2.0"}
                web[(locale, tz)] = json.dumps({"library": lib, "locale": locale, "timezone": tz})
            if (locale, tz, ios) not in app:
                lib = {"name": "analytics-ios" if ios else "analytics-android", "version": "4.1.2"}
                about = {"name": "Northwind Living", "version": "3.8.0"}
                os_name = {"name": "iOS" if ios else "Android"}
                app[(locale, tz, ios)] = json.dumps(
                    {"library": lib, "app": about, "os": os_name, "locale": locale, "timezone": tz}
                )
            web_ctx.append(web[(locale, tz)])
            app_ctx.append(app[(locale, tz, ios)])
        self.contexts = pa.array(web_ctx + app_ctx + list(_CONTEXTS.values()))

    def ctx(self, kind: str, cust: np.ndarray) -> np.ndarray:
        """Indices into the context pool for these customers' events from a source."""
        if kind in ("web", "app"):
            return cust.astype(np.int64) + (self.cu.n if kind == "app" else 0)
        return np.full(len(cust), 2 * self.cu.n + list(_CONTEXTS).index(kind), np.int64)

    def add(
        self,
        name: str,
        touchpoint: str,
        cust: np.ndarray,
        t: np.ndarray,
        props: pa.Array,
        ids: _Ids = _Ids(),
        *,
        kind: str = "track",
        channel: str | None = None,
        email_form: np.ndarray | None = None,
    ) -> np.ndarray:
        """Add a block of events; returns their row numbers (to find their event ids later)."""
        m = len(cust)
        self.names.setdefault(name, len(self.names))

        def full(value: Any, dtype: Any) -> np.ndarray:
            return np.broadcast_to(np.asarray(value, dtype), (m,)).copy()

        channel = channel or _TOUCHPOINT_CHANNEL[touchpoint]
        ctx = self.ctx(ids.ctx, cust) if isinstance(ids.ctx, str) else ids.ctx
        self.blocks.append(
            {
                "cust": cust.astype(np.int32),
                "t": t.astype(np.int64),
                "name": full(self.names[name], np.int16),
                "kind": full(_KINDS.index(kind), np.int8),
                "tp": full(_TOUCHPOINT_KEYS.index(touchpoint), np.int8),
                "ch": full(C.CHANNELS.index(channel), np.int8),
                "user": full(ids.user, bool),
                "dev": full(ids.device, np.int8),
                "email": full(ids.email, bool),
                "phone": full(ids.phone, bool),
                "crm": full(ids.crm, bool),
                "ctx": ctx.astype(np.int64),
                "form": full(-1 if email_form is None else email_form, np.int8),
                "props": props,
            }
        )
        self.rows += m
        return np.arange(self.rows - m, self.rows)

    def write(self, rng: np.random.Generator, path: Path, fmt: str) -> np.ndarray:
        """Write the log sorted by time; returns each row's event number (1-based)."""
        col = {
            k: np.concatenate([b[k] for b in self.blocks]) for k in self.blocks[0] if k != "props"
        }
        props = pa.concat_arrays([b["props"].cast(pa.large_string()) for b in self.blocks])
        self.blocks = []
        n_rows, cu, n = len(col["t"]), self.cu, self.cu.n
        order = np.argsort(col["t"], kind="stable")
        number = np.empty(n_rows, np.int64)
        number[order] = np.arange(1, n_rows + 1)
        form = col["form"].astype(np.int64)
        pick = form < 0  # emails written however that system happened to store them
        form[pick] = rng.choice(5, int(pick.sum()), p=_EMAIL_FORM_P)
        phone_form = rng.choice(5, n_rows, p=_PHONE_FORM_P)
        names = pa.array(sorted(self.names, key=self.names.__getitem__))
        user_ids, crm_ids = pa.array(cu.user_id), pa.array(cu.crm_id)

        def chunk(lo: int, hi: int) -> pa.Table:
            idx = order[lo:hi]
            c = col["cust"][idx].astype(np.int64)
            dev = col["dev"][idx].astype(np.int64)
            seq = pa.array(np.arange(lo + 1, hi + 1)).cast(pa.string())
            device = np.where(dev == KIOSK, 3 * n, dev * n + c)
            arrays = [
                pc.binary_join_element_wise("evt_", pc.utf8_lpad(seq, 9, "0"), ""),
                _take(_KINDS, col["kind"][idx]),
                names.take(pa.array(col["name"][idx])),
                pa.array(col["t"][idx] * 1_000_000, pa.timestamp("us", tz="UTC")),
                user_ids.take(pa.array(c, mask=~col["user"][idx])),
                cu.devices.take(pa.array(device, mask=dev < 0)),
                cu.email_forms.take(pa.array(form[idx] * n + c, mask=~col["email"][idx])),
                cu.phone_forms.take(pa.array(phone_form[idx] * n + c, mask=~col["phone"][idx])),
                crm_ids.take(pa.array(c, mask=~col["crm"][idx])),
                _take(_TOUCHPOINT_KEYS, col["tp"][idx]),
                _take(C.CHANNELS, col["ch"][idx]),
                props.take(pa.array(idx)).cast(pa.string()),
                self.contexts.take(pa.array(col["ctx"][idx])),
            ]
            return pa.Table.from_arrays(arrays, schema=_LOG_SCHEMA)

        bounds = [(lo, min(lo + CHUNK_ROWS, n_rows)) for lo in range(0, n_rows, CHUNK_ROWS)]
        if fmt == "parquet":
            with pq.ParquetWriter(path, _LOG_SCHEMA, compression="zstd") as writer:
                for lo, hi in bounds:
                    writer.write_table(chunk(lo, hi), row_group_size=CHUNK_ROWS)
        else:
            with path.open("wb") as fh:
                for lo, hi in bounds:
                    fh.write(_jsonl(chunk(lo, hi)))
        return number


def _jsonl(table: pa.Table) -> bytes:
    """One JSON object per line, built column-wise; timestamps as ISO-8601 UTC with Z."""
    pieces: list[Any] = []
    for i, name in enumerate(table.column_names):
        column = table.column(name).combine_chunks()
        if name == "timestamp":
            column = pa.array(_iso_array(column.cast(pa.int64()).to_numpy() // 1_000_000))
        escaped = pc.replace_substring(pc.replace_substring(column, "\\", "\\\\"), '"', '\\"')
        quoted = pc.coalesce(pc.binary_join_element_wise('"', escaped, '"', ""), "null")
        pieces += [("{" if i == 0 else ", ") + json.dumps(name) + ": ", quoted]
    lines = pc.binary_join_element_wise(*pieces, "}\n", "")
    offsets = np.frombuffer(lines.buffers()[1], np.int32, len(lines) + 1, lines.offset * 4)
    return lines.buffers()[2].to_pybytes()[offsets[0] : offsets[-1]]


def _login_times(
    rng: np.random.Generator, cu: _Customers, act: _Activity, win: _Window
) -> np.ndarray:
    """When each device (slot-major: browser, app, second browser) is first logged in.

    Browsing before that is anonymous. Events that need a login (checkout, self-service,
    reporting damage, logged-in chat, cancelling) pull the login to just before them.
    """
    n, end = cu.n, win.end
    span = (end - cu.start).astype(np.float64)
    ident = np.full((3, n), NEVER, np.int64)
    # Browsers log in at a random point (a second browser often never); the app soon after
    # install. Events that need a login pull it earlier, below.
    ident[0] = cu.start + (rng.random(n) * span).astype(np.int64)
    ident[1] = np.where(cu.has_app, cu.start + (rng.random(n) * 0.3 * span).astype(np.int64), NEVER)
    late_t = cu.start + ((0.1 + 0.8 * rng.random(n)) * span).astype(np.int64)
    ident[2] = np.where(cu.extra_browser & (rng.random(n) < 0.6), late_t, NEVER)
    o, x, tk = act.orders, act.selfservice, act.tickets
    web, chat = ~o["store"], ~tk["phone"] & tk["logged_in"]
    churners = np.flatnonzero(act.churned)
    needs: list[tuple[np.ndarray | int, np.ndarray, np.ndarray]] = [  # (device slot, who, when)
        (0, o["cust"][web], o["t"][web]),
        (x["slot"], x["cust"], x["t"]),
        (0, o["cust"][o["damaged"]], o["damage_t"][o["damaged"]]),
        (0, tk["cust"][chat], tk["open_t"][chat]),
        (0, churners, act.active_end[churners]),
    ]
    for slot, cust, t in needs:
        slots = np.broadcast_to(np.asarray(slot), cust.shape)
        np.minimum.at(ident, (slots, cust), t - _seconds(rng, len(t), 30, 20 * MINUTE))
    ident = np.where(ident < NEVER, np.maximum(ident, win.start), NEVER)
    ident[ident > end] = NEVER
    return ident


def _log_marketing_and_web(
    log: _Log, rng: np.random.Generator, act: _Activity, win: _Window, ident: np.ndarray
) -> None:
    """Campaign emails (email only) and page views (anonymous until the device logs in)."""
    cp = act.campaigns
    month = np.clip(np.searchsorted(win.month_starts, cp["t"], side="right") - 1, 0, None)
    labels = [datetime.fromtimestamp(int(s), UTC).strftime("%Y-%m") for s in win.month_starts]
    campaign = _take([f"cmp-{m}-{k + 1}" for m in labels for k in range(4)], month * 4 + cp["k"])
    n = len(cp["t"])
    log.add(
        "campaign_email_opened",
        "campaign_email",
        cp["cust"],
        cp["t"],
        _props(n, campaign_id=campaign),
        _EMAIL_ONLY,
    )
    cl = cp["clicked"]
    click_t = cp["t"][cl] + _seconds(rng, int(cl.sum()), 10, 10 * MINUTE)
    props = _props(int(cl.sum()), campaign_id=campaign.filter(pa.array(cl)), link="/sale")
    log.add("campaign_email_clicked", "campaign_email", cp["cust"][cl], click_t, props, _EMAIL_ONLY)

    s = act.sessions
    si = _expand(s["pages"])  # one row per page view
    gaps = _seconds(rng, len(si), 20, 240)
    first = (np.cumsum(s["pages"]) - s["pages"])[si]
    elapsed = np.cumsum(gaps)
    t = s["t"][si] + elapsed - elapsed[first]
    keep = t <= win.end
    si, t = si[keep], t[keep]
    cust, slot = s["cust"][si], s["slot"][si]
    pages = _PAGES + tuple(f"/p/{p}" for p in _PRODUCTS)
    path = _take(pages, rng.integers(0, len(pages), len(si)))
    props = _props(len(si), path=path, referrer=_take(_REFERRERS, s["referrer"][si]))
    ids = _Ids(user=t >= ident[slot, cust], device=slot, ctx="web")
    log.add("page_viewed", "website_browse", cust, t, props, ids, kind="page")


def _log_logins(log: _Log, rng: np.random.Generator, cu: _Customers, ident: np.ndarray) -> None:
    """A login (identify) links a device, the account and an email, and carries the traits;
    a few devices are linked by an alias event instead."""
    n = cu.n
    tail = []
    for i in range(n):
        traits = {
            "name": cu.name[i],
            "segment": C.SEGMENTS[cu.segment[i]],
            "region": C.REGIONS[cu.region[i]],
            "plan": C.PLANS[cu.plan[i]],
            "tenure_months": int(cu.tenure[i]),
            "value": float(cu.value[i]),
            "language": C.LANGUAGES[cu.language[i]],
            "timezone": cu.timezone[i],
        }
        tail.append(", " + json.dumps(traits, ensure_ascii=False)[1:] + "}")
    traits_tail = pa.array(tail)
    alias_slot = np.where(cu.extra_browser, 2, 1)
    aliased: list[np.ndarray] = []
    for slot in range(3):
        by_alias = cu.alias & (alias_slot == slot) & (ident[slot] < NEVER)
        cust = np.flatnonzero((ident[slot] < NEVER) & ~by_alias)
        forms = rng.choice(5, len(cust), p=_EMAIL_FORM_P)
        email = cu.email_forms.take(pa.array(forms * n + cust))
        props = pc.binary_join_element_wise(
            '{"traits": {"email": "', email, '"', traits_tail.take(pa.array(cust)), ""
        )
        ctx = "app" if slot == 1 else "web"
        tp = "mobile_app" if slot == 1 else "website_browse"
        ids = _Ids(user=True, device=slot, email=True, ctx=ctx)
        log.add("login", tp, cust, ident[slot][cust], props, ids, kind="identify", email_form=forms)
        aliased.append(np.flatnonzero(by_alias) * 3 + slot)
    both = np.sort(np.concatenate(aliased))
    cust, slots = both // 3, both % 3
    previous = cu.devices.take(pa.array(slots * n + cust))
    props = _props(len(cust), previous_id=previous)
    log.add(
        "alias",
        "website_browse",
        cust,
        ident[slots, cust],
        props,
        _Ids(user=True, ctx="web"),
        kind="alias",
    )


def _assign_carriers(rng: np.random.Generator, act: _Activity) -> None:
    """Mark the home deliveries SwiftPost carries (``causal.SWIFTPOST_SHARE`` of them) in
    ``act.orders["swiftpost"]``, from a stream of its own so no other draw moves."""
    o = act.orders
    o["swiftpost"] = o["home"] & (rng.random(len(o["t"])) < C.SWIFTPOST_SHARE)


def _log_orders(
    log: _Log, rng: np.random.Generator, cu: _Customers, act: _Activity, end: int
) -> np.ndarray:
    """Orders (web checkout or store), delivery, damage, returns and product registration.

    Returns the row of each order's order_delivered event (-1 when not delivered yet)."""
    o = act.orders
    order_id = _number("NW-", o["t"], 100_001)
    fulfilment = np.where(o["home"], "home_delivery", "carry_out")
    placed = _props(
        len(o["t"]),
        order_id=order_id,
        amount=o["amount"],
        currency="EUR",
        items=o["items"],
        fulfilment=fulfilment,
    )
    w = np.flatnonzero(~o["store"])
    before = o["t"][w] - _seconds(rng, len(w), MINUTE, 5 * MINUTE)
    checkout = _props(len(w), path="/checkout", referrer="direct")
    web_ids = _Ids(user=True, device=0, ctx="web")
    log.add("page_viewed", "checkout_web", o["cust"][w], before, checkout, web_ids, kind="page")
    log.add("order_placed", "checkout_web", o["cust"][w], o["t"][w], placed.take(w), _LOGGED_IN)
    s = np.flatnonzero(o["store"])
    pos = _Ids(crm=True, email=True, device=np.where(o["kiosk"][s], KIOSK, -1), ctx="pos")
    log.add("order_placed", "store_visit", o["cust"][s], o["t"][s], placed.take(s), pos)

    def about(rows: np.ndarray, **extra: Any) -> pa.Array:
        return _props(len(rows), order_id=order_id.take(rows), **extra)

    def carried(rows: np.ndarray, **extra: Any) -> pa.Array:
        # The courier's deliveries name it; the own fleet's carry no partner.
        own = about(rows, **extra)
        courier = about(rows, **extra, partner=C.PARTNERS[0][0])
        return pc.if_else(pa.array(o["swiftpost"][rows]), courier, own)

    late = np.flatnonzero(o["late"])
    props = carried(late, late_days=o["late_days"][late], promised_days=o["promised_days"][late])
    log.add("delivery_late", "delivery", o["cust"][late], o["promised_t"][late], props, _COURIER)
    dv = np.flatnonzero(o["delivered"])
    props = carried(dv, late_days=o["late_days"][dv], promised_days=o["promised_days"][dv])
    delivered = np.full(len(o["t"]), -1)
    delivered[dv] = log.add(
        "order_delivered", "delivery", o["cust"][dv], o["delivered_t"][dv], props, _COURIER
    )
    dm = np.flatnonzero(o["damaged"])
    props = carried(dm, damage=_take(_DAMAGE_KINDS, o["damage_kind"][dm]))
    log.add("item_damaged", "delivery", o["cust"][dm], o["damage_t"][dm], props, _LOGGED_IN)
    ask_t = o["damage_t"][dm] + _seconds(rng, len(dm), 10 * MINUTE, 2 * DAY)
    ask = (rng.random(len(dm)) < C.RETURN_AFTER_DAMAGE) & (ask_t <= end)
    rq, ask_t = dm[ask], ask_t[ask]
    log.add(
        "return_requested", "returns", o["cust"][rq], ask_t, about(rq, reason="damaged"), _LOGGED_IN
    )
    done_t = ask_t + _seconds(rng, len(rq), 5 * DAY, 12 * DAY)
    rd, done_t = rq[done_t <= end], done_t[done_t <= end]
    log.add(
        "return_completed",
        "returns",
        o["cust"][rd],
        done_t,
        about(rd, refund_amount=o["amount"][rd]),
        _Ids(email=True, ctx="warehouse"),
    )
    reg_t = o["delivered_t"][dv] + _seconds(rng, len(dv), HOUR, 5 * DAY)
    reg = (rng.random(len(dv)) < C.PRODUCT_REGISTRATION_RATE) & (reg_t <= end)
    rg, reg_t = dv[reg], reg_t[reg]
    cust = o["cust"][rg]
    product = _take(_PRODUCTS, rng.integers(0, len(_PRODUCTS), len(rg)))
    app = cu.has_app[cust]
    ctx = np.where(app, log.ctx("app", cust), log.ctx("{}", cust))
    ids = _Ids(user=True, device=np.where(app, 1, -1), ctx=ctx)
    log.add("product_registered", "product_use", cust, reg_t, about(rg, product=product), ids)
    return delivered


def _log_app_and_self_service(
    log: _Log, rng: np.random.Generator, act: _Activity, ident: np.ndarray
) -> np.ndarray:
    """App sessions (anonymous until the app logs in) and self-service tasks (logged in).

    Returns the row of each self-service event."""
    a = act.app
    n = len(a["t"])
    props = _props(n, duration_seconds=rng.integers(20, 900, n), screens=1 + rng.poisson(3, n))
    ids = _Ids(user=a["t"] >= ident[1, a["cust"]], device=1, ctx="app")
    log.add("app_session", "mobile_app", a["cust"], a["t"], props, ids)
    x = act.selfservice
    rows = np.empty(len(x["t"]), np.int64)
    for in_app, tp, ctx in ((True, "mobile_app", "app"), (False, "help_center", "web")):
        sel = np.flatnonzero(x["in_app"] == in_app)
        task = _take(_SELF_SERVICE_TASKS, x["task"][sel])
        ids = _Ids(user=True, device=x["slot"][sel], ctx=ctx)
        rows[sel] = log.add(
            "self_service_completed",
            tp,
            x["cust"][sel],
            x["t"][sel],
            _props(len(sel), task=task, success=True),
            ids,
        )
    return rows


SUPPORT_TEAM = "frontline"


def _team_member_ids(team_key: str) -> list[str]:
    """The employee ids ``employees.csv`` gives a team's members (numbered in org order)."""
    first = 1
    for dept in C.DEPARTMENTS:
        for team in dept.teams:
            if team.key == team_key:
                return [f"E{first + j:04d}" for j in range(team.size)]
            first += team.size
    raise KeyError(team_key)


def _log_support(log: _Log, act: _Activity) -> np.ndarray:
    """Ticket opened/closed: a phone call carries only the phone number; a chat carries the
    email, plus the login when the customer chats from their account.

    Returns the row of each ticket's ticket_closed event (-1 while still open)."""
    tk = act.tickets
    m = len(tk["open_t"])
    ticket_id = _number("T-", tk["open_t"], 100_001)
    common = {"ticket_id": ticket_id, "topic": _take(_TICKET_TOPICS, tk["topic"])}
    common["contact_number"] = tk["contact"]
    repeat_of = ticket_id.take(np.maximum(tk["prev"], 0))
    opened = pc.if_else(
        pa.array(tk["prev"] >= 0), _props(m, **common, repeat_of=repeat_of), _props(m, **common)
    )
    # The agent who handled each ticket: the support team's members in turn (no random draw,
    # so the rest of the company stays the same).
    agents = _team_member_ids(SUPPORT_TEAM)
    closed = _props(
        m,
        ticket_id=ticket_id,
        resolved=~tk["unresolved"],
        wait_minutes=tk["wait"],
        handle_minutes=tk["handle"],
        agent_id=pa.array([agents[(i * 7919) % len(agents)] for i in range(m)], pa.string()),
    )
    closed_rows = np.full(m, -1)
    for phone in (True, False):
        tp = "support_phone" if phone else "support_chat"
        for event, t_key, subset in (
            ("ticket_opened", "open_t", tk["phone"] == phone),
            ("ticket_closed", "close_t", (tk["phone"] == phone) & tk["closed"]),
        ):
            sel = np.flatnonzero(subset)
            cust = tk["cust"][sel]
            inside = tk["logged_in"][sel] & (not phone)
            ctx = np.where(inside, log.ctx("web", cust), log.ctx("helpdesk", cust))
            ids = _Ids(
                user=inside, device=np.where(inside, 0, -1), email=not phone, phone=phone, ctx=ctx
            )
            props = (opened if event == "ticket_opened" else closed).take(sel)
            rows = log.add(event, tp, cust, tk[t_key][sel], props, ids)
            if event == "ticket_closed":
                closed_rows[sel] = rows
    return closed_rows


def _log_billing_and_lifecycle(
    log: _Log, rng: np.random.Generator, cu: _Customers, act: _Activity, win: _Window
) -> None:
    """Invoices, payments, billing errors and refunds; sales calls; renewals; cancellations."""
    end = win.end
    b = act.bills
    invoice_id = _number("INV-", b["t"], 500_001)
    labels = [datetime.fromtimestamp(int(s), UTC).strftime("%Y-%m") for s in win.month_starts]
    props = _props(
        len(b["t"]),
        invoice_id=invoice_id,
        amount=b["amount"],
        currency="EUR",
        period=_take(labels, b["month"]),
    )
    log.add("invoice_sent", "invoice", b["cust"], b["t"], props, _BILLING_MAIL)
    pd = np.flatnonzero(b["paid_t"] <= end)
    props = _props(len(pd), invoice_id=invoice_id.take(pd), amount=b["amount"][pd])
    log.add("payment_received", "invoice", b["cust"][pd], b["paid_t"][pd], props, _BILLING)
    er = np.flatnonzero(b["error"])
    props = _props(
        len(er),
        invoice_id=invoice_id.take(er),
        overcharged=b["overcharge"][er],
        error=_take(_BILLING_ERRORS, b["error_kind"][er]),
    )
    log.add("billing_error", "invoice", b["cust"][er], b["error_t"][er], props, _BILLING)
    rf = er[b["refund_t"][er] <= end]
    props = _props(len(rf), invoice_id=invoice_id.take(rf), amount=b["overcharge"][rf])
    log.add("refund_issued", "invoice", b["cust"][rf], b["refund_t"][rf], props, _BILLING_MAIL)

    sc = act.sales_calls
    props = _props(
        len(sc["t"]), outcome=_take(_SALES_OUTCOMES, sc["outcome"]), duration_minutes=sc["minutes"]
    )
    log.add(
        "sales_call_completed",
        "sales_call",
        sc["cust"],
        sc["t"],
        props,
        _Ids(phone=True, crm=True, ctx="crm"),
    )

    rn = act.renewals
    cust = rn["cust"]
    plan = _take(C.PLANS, cu.plan[cust])
    fee = _by(C.MONTHLY_FEE, C.PLANS, cu.plan[cust])
    yearly = np.round(12 * fee * _by(C.SEGMENT_FEE_FACTOR, C.SEGMENTS, cu.segment[cust]), 2)
    remind_t = rn["t"] - 14 * DAY
    rm = np.flatnonzero(remind_t >= win.start)
    renews_on = pa.array(_iso_array(rn["t"]), pa.string())
    props = _props(len(rm), plan=plan.take(rm), renews_on=renews_on.take(rm))
    log.add(
        "renewal_reminder_sent",
        "renewal",
        cust[rm],
        remind_t[rm],
        props,
        _Ids(email=True, crm=True, ctx="esp"),
    )
    props = _props(len(cust), plan=plan, term="annual", amount=yearly)
    log.add("subscription_renewed", "renewal", cust, rn["t"], props, _BILLING_MAIL)

    churners = np.flatnonzero(act.churned)
    cancel_t = act.active_end[churners]
    before = cancel_t - _seconds(rng, len(churners), MINUTE, 10 * MINUTE)
    page = _props(len(churners), path="/account/cancel", referrer="direct")
    log.add(
        "page_viewed",
        "cancellation",
        churners,
        before,
        page,
        _Ids(user=True, device=0, ctx="web"),
        kind="page",
    )
    reason = pa.array([act.cancel_reason[i] for i in churners.tolist()], pa.string())
    props = _props(len(churners), plan=_take(C.PLANS, cu.plan[churners]), reason=reason)
    log.add("subscription_cancelled", "cancellation", churners, cancel_t, props, _LOGGED_IN)


def _log_survey_invitations(log: _Log, sv: _Surveys) -> None:
    iv = sv.invites
    for survey in SURVEY_KEYS:
        for tp in sorted(set(iv["touchpoint"][iv["survey"] == survey].tolist())):
            sel = (iv["survey"] == survey) & (iv["touchpoint"] == tp)
            props = _props(int(sel.sum()), survey=survey)
            ids = _Ids(email=True, crm=True, ctx="survey")
            log.add("survey_sent", tp, iv["cust"][sel], iv["t"][sel], props, ids, channel="email")


def _build_log(
    rng: np.random.Generator, cu: _Customers, act: _Activity, sv: _Surveys, win: _Window
) -> tuple[_Log, dict[str, np.ndarray]]:
    """All events; also returns, per trigger kind, the log row of each trigger."""
    log = _Log(cu)
    ident = _login_times(rng, cu, act, win)
    _log_marketing_and_web(log, rng, act, win, ident)
    _log_logins(log, rng, cu, ident)
    delivered = _log_orders(log, rng, cu, act, win.end)
    selfservice = _log_app_and_self_service(log, rng, act, ident)
    closed = _log_support(log, act)
    _log_billing_and_lifecycle(log, rng, cu, act, win)
    _log_survey_invitations(log, sv)
    return log, {"delivery": delivered, "ticket": closed, "selfservice": selfservice}


# ============================================================================================
# Stage 5: responses.csv
# ============================================================================================

RESPONSE_COLUMNS = _words(
    "response_id survey submitted_at email crm_id touchpoint trigger_event_id language nps csat "
    "ces comment"
)
_SCORE_COLUMN = {
    "relationship_nps": "nps",
    "delivery_csat": "csat",
    "support_csat": "csat",
    "self_service_ces": "ces",
}


def _write_responses(
    rng: np.random.Generator,
    cu: _Customers,
    sv: _Surveys,
    triggers: dict[str, np.ndarray],
    number: np.ndarray,
    path: Path,
) -> list[str]:
    """Write the answers; returns the comments (for the ground truth's counts)."""
    r = sv.responses
    m = len(r["t"])
    language = np.array(C.LANGUAGES, object)[cu.language[r["cust"]]]
    comments = [""] * m
    w = np.flatnonzero(r["has_comment"])
    texts = compose_comments(
        rng,
        list(language[w]),
        list(r["topic"][w]),
        days=r["days"][w],
        minutes=r["minutes"][w],
        times=r["times"][w],
    )
    for i, text in zip(w.tolist(), texts, strict=True):
        comments[i] = text
    trigger_ids = np.full(m, "", object)
    for kind, rows in triggers.items():
        sel = r["trigger_kind"] == _TRIGGER_KINDS.index(kind)
        row = rows[r["trigger"][sel]]
        ids = np.full(len(row), "", object)
        ids[row >= 0] = _event_id(number[row[row >= 0]])
        trigger_ids[sel] = ids
    emails = cu.email_forms.take(pa.array(r["email_form"] * cu.n + r["cust"])).to_pylist()
    submitted = _iso_array(r["t"])
    width = max(7, len(str(m)))
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(RESPONSE_COLUMNS)
        for i in range(m):
            survey, c = str(r["survey"][i]), int(r["cust"][i])
            scores = {"nps": "", "csat": "", "ces": ""} | {
                _SCORE_COLUMN[survey]: int(r["score"][i])
            }
            out.writerow(
                [
                    f"R{i + 1:0{width}d}",
                    survey,
                    submitted[i],
                    emails[i],
                    cu.crm_id[c] if r["has_crm"][i] else "",
                    r["touchpoint"][i],
                    trigger_ids[i],
                    language[i],
                    scores["nps"],
                    scores["csat"],
                    scores["ces"],
                    comments[i],
                ]
            )
    return comments


# ============================================================================================
# Stage 6: employees and their monthly pulse
# ============================================================================================

_PULSE_PHRASES = {
    "positive": (
        "great team spirit",
        "my manager supports me",
        "proud of our products",
        "good collaboration with other teams",
        "flexible hours help a lot",
        "I learn something new every week",
        "we celebrate our wins",
    ),
    "neutral": (
        "an ok month",
        "busy but fine",
        "nothing special to report",
        "some good days, some bad ones",
        "the usual",
    ),
    "negative": (
        "the workload is too high",
        "we are understaffed",
        "our tools are slow",
        "too many last-minute changes",
        "I do not feel heard by management",
    ),
    # Teams that own a friction's touchpoint complain about what they see of it.
    "late_delivery": (
        "customers are angry about late deliveries",
        "drivers take the blame for delays we cannot control",
        "the routes are impossible to finish on time",
    ),
    "damaged_item": (
        "too many damaged parcels to deal with",
        "the packaging is not good enough for big items",
    ),
    "billing_error": (
        "fixing invoice errors takes all our time",
        "the billing system keeps producing wrong invoices",
    ),
    "repeat_contact": (
        "the same customers call again and again",
        "we cannot fix issues on the first call with our tools",
    ),
    "long_wait": ("the queue is always full", "we never have enough people on the phones"),
}


def _team_frictions(act: _Activity, end: int) -> tuple[dict[str, float], dict[str, list[str]]]:
    """Per team: the share of its owned deliveries/invoices/tickets that met a friction, and
    which frictions happen at its touchpoints."""
    o = act.orders
    opportunities = {
        "delivery": max(1, int((o["home"] & (o["promised_t"] <= end)).sum())),
        "invoice": max(1, len(act.bills["t"])),
        "ticket": max(1, len(act.tickets["open_t"])),
    }
    counts = np.bincount(act.frictions["kind"], minlength=len(C.FRICTIONS))
    owner = {tp.key: tp.team for tp in C.TOUCHPOINTS}
    share = {team.key: 0.0 for d in C.DEPARTMENTS for team in d.teams}
    kinds: dict[str, list[str]] = {}
    for i, f in enumerate(C.FRICTIONS):
        for team in sorted({owner[tp] for tp in f.touchpoints}):
            share[team] += counts[i] / opportunities[f.per]
            kinds.setdefault(team, []).append(f.key)
    return share, kinds


# Where each department works; everyone else is at the head office.
_LOCATIONS = {"supply_chain": "Leipzig depot", "operations": "Leipzig depot", "sales": "Stores"}


def _write_directory(
    path: Path, rows: list[tuple[str, str, str, str, bool]], names: list[str], win: _Window
) -> None:
    """``employees.csv``: who works where, reporting to whom (team lead -> department head ->
    the first leader), since when. Derived from the rows alone: no random draws, so the pulse
    answers stay the same whatever columns the directory carries."""
    lead = {team: e for e, _, _, team, boss in rows if boss}
    head: dict[str, str] = {}
    for e, _, dept, _team, boss in rows:
        if boss:
            head.setdefault(dept, e)
    chief = rows[0][0]
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(("employee_id", "email", "department", "team", "manager", "name", "role",
                      "manager_id", "start_date", "location"))  # fmt: skip
        for i, ((e, mail, dept, team, boss), name) in enumerate(zip(rows, names, strict=True)):
            if not boss:
                manager = lead[team]
            elif head[dept] != e:
                manager = head[dept]
            else:
                manager = chief if e != chief else ""
            role = "team lead" if boss else "team member"
            started = win.start - (30 + (i * 97) % 2400) * DAY
            since = datetime.fromtimestamp(started, UTC).date().isoformat()
            out.writerow((e, mail, dept, team, "true" if boss else "false", name, role, manager,
                          since, _LOCATIONS.get(dept, "Berlin head office")))  # fmt: skip


def _write_employees(
    rng: np.random.Generator, act: _Activity, win: _Window, out_dir: Path
) -> tuple[int, int, dict[str, float]]:
    share, kinds = _team_frictions(act, win.end)
    rows: list[tuple[str, str, str, str, bool]] = []
    names: list[str] = []
    seen: dict[str, int] = {}
    for dept in C.DEPARTMENTS:
        for team in dept.teams:
            for j in range(team.size):
                lang = "de" if rng.random() < 0.5 else "en"
                first = _FIRST[lang][int(rng.integers(0, len(_FIRST[lang])))]
                last = _LAST[lang][int(rng.integers(0, len(_LAST[lang])))]
                local = f"{first}.{last}".translate(_TRANSLIT).lower()
                seen[local] = seen.get(local, 0) + 1
                local += str(seen[local]) if seen[local] > 1 else ""
                email = f"{local}@{EMPLOYEE_DOMAIN}"
                rows.append((f"E{len(rows) + 1:04d}", email, dept.key, team.key, j == 0))
                names.append(f"{first} {last}")
    _write_directory(out_dir / "employees.csv", rows, names, win)

    # Monthly pulse (mid-month): eNPS is lower in teams whose touchpoints carry more friction.
    n_emp = len(rows)
    team_share = np.array([share[row[3]] for row in rows])
    emp = np.tile(np.arange(n_emp), win.months)
    month = np.repeat(np.arange(win.months), n_emp)
    t = win.month_starts[month] + 10 * DAY + _seconds(rng, len(emp), 0, 5 * DAY)
    ok = (rng.random(len(emp)) < C.PULSE_RESPONSE_RATE) & (t <= win.end)
    emp, t = emp[ok], t[ok]
    latent = C.PULSE_BASE_MEAN + C.PULSE_FRICTION_EFFECT * team_share[emp]
    enps = _clip_score(latent + C.PULSE_NOISE_SD * rng.standard_normal(len(emp)), 0, 10)
    order = np.lexsort((emp, t))
    emp, t, enps = emp[order], t[order], enps[order]
    tone = _tone(enps, "nps")
    write = rng.random(len(emp)) < C.PULSE_COMMENT_RATE
    pick = rng.random(len(emp))
    submitted = _iso_array(t)
    with (out_dir / "pulse.csv").open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(("employee_id", "submitted_at", "enps", "comment"))
        for i in range(len(emp)):
            comment = ""
            if write[i]:
                team = rows[emp[i]][3]
                bank = ("negative", "neutral", "positive")[tone[i]]
                if bank == "negative" and team in kinds and pick[i] < 0.7:
                    bank = kinds[team][int(pick[i] * 100) % len(kinds[team])]
                words = _PULSE_PHRASES[bank]
                text = words[int(pick[i] * 10_000) % len(words)]
                comment = text[0].upper() + text[1:] + "."
            out.writerow((rows[emp[i]][0], submitted[i], int(enps[i]), comment))
    return n_emp, len(emp), share


# ============================================================================================
# Stage 7: the partner's own people and their monthly partner pulse
# ============================================================================================

_PARTNER_ROLES = ("dispatch lead", "route planner", "driver", "driver", "account manager")
_PARTNER_COMMENTS = {
    "negative": ("tell us about delivery changes earlier", "the handover slots change too often",
                 "nobody answers the depot phone in the evening"),
    "neutral": ("the weekly call helps", "labels could be clearer"),
    "positive": ("easy to work with", "clear plans every week", "quick answers when we ask"),
}  # fmt: skip


def _write_partner_pulse(rng: np.random.Generator, win: _Window, out_dir: Path) -> tuple[int, int]:
    """``partner_contacts.csv`` (the people at SwiftPost who answer the partner pulse) and
    ``partner_pulse.csv`` (their monthly answers, mid-month). Every draw comes from this
    stage's stream, so no customer or employee figure moves."""
    from cxm.employees.partner_pulse import contact_id

    partner = C.PARTNERS[0][0]
    contacts = []
    for i in range(C.PARTNER_CONTACTS):
        first = _FIRST["en"][int(rng.integers(0, len(_FIRST["en"])))]
        last = _LAST["en"][int(rng.integers(0, len(_LAST["en"])))]
        email = f"{first}.{last}{i + 1}@{partner}.example".translate(_TRANSLIT).lower()
        contacts.append(
            (partner, f"{first} {last}", email, _PARTNER_ROLES[i % len(_PARTNER_ROLES)])
        )
    with (out_dir / "partner_contacts.csv").open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(("partner", "name", "email", "role"))
        out.writerows(contacts)
    rows = 0
    with (out_dir / "partner_pulse.csv").open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(("submitted_at", "contact_id", "partner", "pnps", "ease", "communication",
                      "comment"))  # fmt: skip
        for month in range(win.months):
            for _, _, email, _ in contacts:
                if rng.random() >= C.PARTNER_PULSE_RESPONSE_RATE:
                    continue
                t = int(win.month_starts[month] + 12 * DAY + _seconds(rng, 1, 0, 4 * DAY)[0])
                if t > win.end:
                    continue
                latent = C.PARTNER_PULSE_MEAN + C.PARTNER_PULSE_SD * rng.standard_normal()
                pnps = int(_clip_score(np.array([latent]), 0, 10)[0])
                items = [
                    int(_clip_score(np.array([m + 0.9 * rng.standard_normal()]), 1, 5)[0])
                    for m in C.PARTNER_PULSE_ITEM_MEANS.values()
                ]
                comment = ""
                if rng.random() < C.PARTNER_PULSE_COMMENT_RATE:
                    bank = "negative" if pnps <= 6 else "neutral" if pnps <= 8 else "positive"
                    words = _PARTNER_COMMENTS[bank]
                    text = words[int(rng.integers(0, len(words)))]
                    comment = text[0].upper() + text[1:] + "."
                out.writerow((_iso(t), contact_id(partner, email), partner, pnps, *items, comment))
                rows += 1
    return len(contacts), rows


# ============================================================================================
# Org and survey definitions (YAML)
# ============================================================================================


def _yaml_str(value: str) -> str:
    """A YAML scalar: plain when safe, JSON-quoted (which is valid YAML) otherwise."""
    plain = value[:1].isalnum() and not any(ch in value for ch in ":#{}[],&*!|>'\"%@`")
    return value if plain else json.dumps(value, ensure_ascii=False)


def _write_org(path: Path) -> None:
    lines = [
        "# Northwind Living: departments, their teams, and the touchpoints each team owns.",
        f"company: {{name: {_yaml_str(C.COMPANY_NAME)}}}",
        "departments:",
    ]
    for d in C.DEPARTMENTS:
        lines += [f"  - key: {d.key}", f"    name: {_yaml_str(d.name)}", "    teams:"]
        for team in d.teams:
            default = ", default: true" if team.default else ""
            lines.append(f"      - {{key: {team.key}, name: {_yaml_str(team.name)}{default}}}")
    lines.append("partners:")
    for key, name, kind in C.PARTNERS:
        lines.append(f"  - {{key: {key}, name: {_yaml_str(name)}, kind: {kind}}}")
    lines.append("touchpoints:")
    for tp in C.TOUCHPOINTS:
        lines += [
            f"  - key: {tp.key}",
            f"    name: {_yaml_str(tp.name)}",
            f"    channel: {_yaml_str(tp.channel)}",
            f"    stage: {_yaml_str(tp.stage)}",
            f"    owner: {{department: {tp.department}, team: {tp.team}}}",
        ]
        if tp.partner:
            lines.append(f"    partner: {tp.partner}")
            if tp.partner_runs != "all":
                lines.append(f"    partner_runs: {tp.partner_runs}")
        if tp.contributors:
            lines.append(f"    contributors: [{', '.join(tp.contributors)}]")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


# The survey definitions, written verbatim to surveys/<key>.yaml (the surveys importer reads
# them). The `comment` question is the one responses.csv's comment column answers.
SURVEY_YAML: dict[str, str] = {
    "relationship_nps": """\
key: relationship_nps
name: Relationship NPS
title:
  en: How likely are you to recommend us?
  de: Wie wahrscheinlich empfehlen Sie uns weiter?
  fr: Nous recommanderiez-vous ?
kind: relationship
languages: [en, de, fr]
default_language: en
intro:
  en: Two minutes to tell us how we are doing.
  de: Zwei Minuten, um uns zu sagen, wie wir uns schlagen.
  fr: Deux minutes pour nous dire comment nous nous en sortons.
thank_you:
  en: Thank you for your feedback!
  de: Vielen Dank für Ihr Feedback!
  fr: Merci pour votre retour !
questions:
  - id: nps
    type: nps
    required: true
    text:
      en: How likely are you to recommend Northwind Living to a friend or colleague?
      de: Wie wahrscheinlich ist es, dass Sie Northwind Living weiterempfehlen?
      fr: Quelle est la probabilité que vous recommandiez Northwind Living à un proche ?
  - id: improve
    type: multiple_choice
    required: false
    show_if: "nps <= 8"
    text:
      en: What should we improve?
      de: Was sollten wir verbessern?
      fr: Que faut-il améliorer ?
    options:
      - {value: delivery, text: {en: Delivery, de: Lieferung, fr: Livraison}}
      - {value: billing, text: {en: Billing, de: Abrechnung, fr: Facturation}}
      - {value: support, text: {en: Customer service, de: Kundenservice, fr: Service client}}
      - {value: products, text: {en: Products, de: Produkte, fr: Produits}}
      - {value: price, text: {en: Price, de: Preis, fr: Prix}}
  - id: comment
    type: open_text
    required: false
    text:
      en: What is the main reason for your score?
      de: Was ist der wichtigste Grund für Ihre Bewertung?
      fr: Quelle est la principale raison de votre note ?
  - {id: segment, type: hidden}
""",
    "delivery_csat": """\
key: delivery_csat
name: Delivery CSAT
title: {en: "How was your delivery?", de: "Wie war Ihre Lieferung?", fr: "Et votre livraison ?"}
kind: transactional
languages: [en, de, fr]
default_language: en
intro:
  en: Your order has arrived. How did it go?
  de: Ihre Bestellung ist angekommen. Wie lief es?
  fr: Votre commande est arrivée. Comment cela s'est-il passé ?
thank_you:
  en: Thanks, this helps our delivery team.
  de: Danke, das hilft unserem Lieferteam.
  fr: Merci, cela aide notre équipe de livraison.
questions:
  - id: csat
    type: csat
    required: true
    text:
      en: How satisfied are you with your delivery?
      de: Wie zufrieden sind Sie mit Ihrer Lieferung?
      fr: Êtes-vous satisfait de votre livraison ?
  - id: what_wrong
    type: single_choice
    required: false
    show_if: "csat <= 3"
    text:
      en: What went wrong?
      de: Was ist schiefgelaufen?
      fr: Qu'est-ce qui n'a pas marché ?
    options:
      - {value: late, text: {en: It was late, de: Sie kam zu spät, fr: En retard}}
      - {value: damaged, text: {en: Something was damaged, de: Etwas war beschädigt, fr: Abîmé}}
      - {value: driver, text: {en: The driver, de: Der Fahrer, fr: Le livreur}}
      - {value: other, text: {en: Something else, de: Etwas anderes, fr: Autre chose}}
  - id: comment
    type: open_text
    required: false
    text: {en: "Anything else?", de: "Möchten Sie noch etwas sagen?", fr: "Autre chose ?"}
  - {id: touchpoint, type: hidden}
""",
    "support_csat": """\
key: support_csat
name: Support CSAT
title: {en: "How did we do?", de: "Wie war unser Service?", fr: "Comment était notre service ?"}
kind: transactional
languages: [en, de, fr]
default_language: en
intro:
  en: You recently contacted our support team.
  de: Sie haben kürzlich unseren Kundenservice kontaktiert.
  fr: Vous avez récemment contacté notre service client.
thank_you: {en: "Thank you!", de: "Vielen Dank!", fr: "Merci !"}
questions:
  - id: csat
    type: csat
    required: true
    text:
      en: How satisfied are you with the help you received?
      de: Wie zufrieden sind Sie mit der erhaltenen Hilfe?
      fr: Êtes-vous satisfait de l'aide reçue ?
  - id: resolved
    type: single_choice
    required: false
    text:
      en: Was your issue resolved?
      de: Wurde Ihr Anliegen gelöst?
      fr: Votre problème est-il résolu ?
    options:
      - {value: "yes", text: {en: "Yes", de: Ja, fr: Oui}}
      - {value: "no", text: {en: "No", de: Nein, fr: Non}}
  - id: comment
    type: open_text
    required: false
    text: {en: Tell us more, de: Erzählen Sie uns mehr, fr: Dites-nous en plus}
  - {id: touchpoint, type: hidden}
""",
    "self_service_ces": """\
key: self_service_ces
name: Self-service effort (CES)
title: {en: "Was it easy?", de: "War es einfach?", fr: "Était-ce facile ?"}
kind: transactional
languages: [en, de, fr]
default_language: en
intro:
  en: You just used our self-service.
  de: Sie haben gerade unseren Self-Service genutzt.
  fr: Vous venez d'utiliser notre espace client.
thank_you: {en: "Thanks!", de: "Danke!", fr: "Merci !"}
questions:
  - id: ces
    type: ces
    required: true
    text:
      en: Northwind Living made it easy to do what I wanted.
      de: Northwind Living hat es mir leicht gemacht, mein Anliegen zu erledigen.
      fr: Northwind Living m'a permis de faire facilement ce que je voulais.
  - id: comment
    type: open_text
    required: false
    text:
      en: What could be easier?
      de: Was könnte einfacher sein?
      fr: Qu'est-ce qui pourrait être plus simple ?
  - {id: touchpoint, type: hidden}
""",
    "employee_pulse": """\
key: employee_pulse
name: Employee pulse
title: {en: Monthly team pulse, de: Monatlicher Team-Puls}
kind: employee
languages: [en, de]
default_language: en
intro: {en: Three questions., de: Drei Fragen.}
thank_you: {en: Thank you for sharing., de: Danke fürs Mitteilen.}
questions:
  - id: enps
    type: nps
    required: true
    text:
      en: How likely are you to recommend Northwind Living as a place to work?
      de: Wie wahrscheinlich empfehlen Sie Northwind Living als Arbeitgeber weiter?
  - id: workload
    type: rating
    required: false
    scale: {min: 1, max: 5}
    text:
      en: How manageable was your workload this month?
      de: Wie gut war Ihre Arbeitslast diesen Monat zu bewältigen?
  - id: comment
    type: open_text
    required: false
    text: {en: "What would make your work better?", de: "Was würde Ihre Arbeit verbessern?"}
  - {id: team, type: hidden}
""",
}


def _write_surveys(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for key, text in SURVEY_YAML.items():
        (folder / f"{key}.yaml").write_text(text, encoding="utf-8")


# ============================================================================================
# Ground truth: customers.csv and ground_truth.json (never loaded as facts)
# ============================================================================================

CUSTOMER_COLUMNS = _words(
    "customer_key crm_id user_id email phone name segment region plan language tenure_months "
    "value churned churned_at"
) + tuple(C.FRICTION_KEYS)


def _write_customers(cu: _Customers, act: _Activity, path: Path) -> np.ndarray:
    """One row per customer with what really happened; returns the friction counts."""
    counts = np.zeros((cu.n, len(C.FRICTIONS)), np.int64)
    np.add.at(counts, (act.frictions["cust"], act.frictions["kind"]), 1)
    churned_at = np.where(act.churned, _iso_array(act.active_end), "")
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(CUSTOMER_COLUMNS)
        for i in range(cu.n):
            out.writerow(
                [
                    cu.key[i],
                    cu.crm_id[i],
                    cu.user_id[i],
                    cu.email[i],
                    cu.phone[i],
                    cu.name[i],
                    C.SEGMENTS[cu.segment[i]],
                    C.REGIONS[cu.region[i]],
                    C.PLANS[cu.plan[i]],
                    C.LANGUAGES[cu.language[i]],
                    int(cu.tenure[i]),
                    f"{cu.value[i]:.2f}",
                    "true" if act.churned[i] else "false",
                    churned_at[i],
                    *counts[i].tolist(),
                ]
            )
    return counts


def _ground_truth(
    cu: _Customers,
    act: _Activity,
    sv: _Surveys,
    win: _Window,
    seed: int,
    fmt: str,
    friction_counts: np.ndarray,
    team_share: dict[str, float],
    files: dict[str, int],
    comments: list[str],
) -> dict[str, Any]:
    r = sv.responses
    o = act.orders
    opportunities = {
        "delivery": int((o["home"] & (o["promised_t"] <= win.end)).sum()),
        "invoice": len(act.bills["t"]),
        "ticket": len(act.tickets["open_t"]),
    }
    frictions = []
    for i, row in enumerate(C.effect_table()):
        planted = int(friction_counts[:, i].sum())
        chances = opportunities[str(row["per"])]
        frictions.append(
            row
            | {
                "planted": planted,
                "customers_affected": int((friction_counts[:, i] > 0).sum()),
                "opportunities": chances,
                "observed_rate": round(planted / max(1, chances), 4),
            }
        )
    observed: dict[str, Any] = {}
    for key in SURVEY_KEYS:
        scores = r["score"][r["survey"] == key]
        mean = round(float(scores.mean()), 3) if len(scores) else None
        observed[key] = {"responses": len(scores), "mean": mean}
    nps = r["score"][r["survey"] == "relationship_nps"]
    observed["relationship_nps"]["nps"] = (
        round(float(100 * ((nps >= 9).mean() - (nps <= 6).mean())), 1) if len(nps) else None
    )
    kiosk = sorted({cu.key[i] for i in o["cust"][o["kiosk"]].tolist()})
    shared = {
        "emails": cu.shared["emails"],
        "phones": cu.shared["phones"],
        "devices": [
            {
                "value": cu.devices[3 * cu.n].as_py(),
                "customer_keys": kiosk,
                "note": "store kiosk tablet: the anonymous_id on kiosk store orders",
            }
        ],
    }
    written = [c for c in comments if c]
    return {
        "company": C.COMPANY_NAME,
        "seed": seed,
        "customers": cu.n,
        "months": win.months,
        "format": fmt,
        "window": {"start": _iso(win.start), "end": _iso(win.end)},
        "phone_region": C.PHONE_REGION,
        "files": files,
        "frictions": frictions,
        "scores": {
            "nps": {
                "base_mean": C.NPS_BASE_MEAN,
                "noise_sd": C.NPS_NOISE_SD,
                "segment_shift": C.NPS_SEGMENT_SHIFT,
                "plan_shift": C.NPS_PLAN_SHIFT,
                "memory_days": C.NPS_MEMORY_DAYS,
            },
            "csat": {"base_mean": C.CSAT_BASE_MEAN, "noise_sd": C.CSAT_NOISE_SD},
            "ces": {
                "base_mean": C.CES_BASE_MEAN,
                "web_shift": C.CES_WEB_SHIFT,
                "noise_sd": C.CES_NOISE_SD,
            },
            "observed": observed,
        },
        "churn": {
            "monthly_hazard": C.CHURN_MONTHLY_HAZARD,
            "plan_log_odds": C.CHURN_PLAN_LOG_ODDS,
            "churned": int(act.churned.sum()),
            "rate": round(float(act.churned.mean()), 4),
        },
        "surveys": {
            "invite_rate": C.SURVEY_INVITE_RATE,
            "response_rate": C.SURVEY_RESPONSE_RATE,
            "invitations": len(sv.invites["t"]),
            "comments": len(written),
            "distinct_comments": len(set(written)),
            "comment_templates": template_count(),
        },
        "shared_identifiers": shared,
        "partners": {
            "swiftpost": {
                "share_of_home_deliveries": C.SWIFTPOST_SHARE,
                "deliveries": int((o["swiftpost"] & o["delivered"]).sum()),
                "home_deliveries": int(o["delivered"].sum()),
            }
        },
        "employees": {
            "pulse_base_mean": C.PULSE_BASE_MEAN,
            "pulse_friction_effect": C.PULSE_FRICTION_EFFECT,
            "team_friction_share": {k: round(v, 4) for k, v in team_share.items()},
        },
    }


# ============================================================================================
# The entry point
# ============================================================================================


def generate(
    out_dir: Path,
    *,
    customers: int = 2000,
    months: int = 6,
    seed: int = 7,
    fmt: str = "parquet",
    progress: Progress | None = None,
) -> GenerationSummary:
    """Write the Northwind Living demo company into ``out_dir`` (created if missing).

    The same arguments always give byte-identical files. ``fmt`` chooses how the interaction log
    is written (``parquet`` or ``jsonl``); ``progress`` is called with the name of each stage.
    """
    if fmt not in FORMATS:
        raise Invalid(f"format must be one of {', '.join(FORMATS)}, not '{fmt}'")
    if customers < 10:
        raise Invalid("the demo company needs at least 10 customers")
    if not 1 <= months <= 60:
        raise Invalid("months must be between 1 and 60")
    say: Progress = progress or (lambda _stage: None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    streams = np.random.SeedSequence(seed).spawn(len(_STAGES))
    rng = {stage: np.random.default_rng(s) for stage, s in zip(_STAGES, streams, strict=True)}
    win = _window(months)
    paths = {
        "org": out / "org.yaml",
        "surveys": out / "surveys",
        "interactions": out / f"interactions.{fmt}",
        "responses": out / "responses.csv",
        "employees": out / "employees.csv",
        "pulse": out / "pulse.csv",
        "partner_contacts": out / "partner_contacts.csv",
        "partner_pulse": out / "partner_pulse.csv",
        "customers": out / "customers.csv",
        "ground_truth": out / "ground_truth.json",
    }
    counts: dict[str, int] = {}

    say("org")
    _write_org(paths["org"])
    _write_surveys(paths["surveys"])
    counts["surveys"] = len(SURVEY_YAML)
    say("customers")
    cu = _make_customers(rng["customers"], customers, win)
    say("activity")
    act = _make_activity(rng["activity"], cu, win)
    _assign_carriers(rng["carriers"], act)
    say("surveys")
    sv = _sample_surveys(rng["surveys"], cu, act, win)
    say("interactions")
    log, triggers = _build_log(rng["interactions"], cu, act, sv, win)
    other = out / f"interactions.{'jsonl' if fmt == 'parquet' else 'parquet'}"
    other.unlink(missing_ok=True)  # never leave the log of an earlier run beside this one
    counts["interactions"] = log.rows
    number = log.write(rng["interactions"], paths["interactions"], fmt)
    del log
    say("responses")
    comments = _write_responses(rng["comments"], cu, sv, triggers, number, paths["responses"])
    counts["responses"] = len(comments)
    say("employees")
    counts["employees"], counts["pulse"], share = _write_employees(rng["employees"], act, win, out)
    say("partner pulse")
    counts["partner_contacts"], counts["partner_pulse"] = _write_partner_pulse(
        rng["partner_pulse"], win, out
    )
    say("ground truth")
    friction_counts = _write_customers(cu, act, paths["customers"])
    counts["customers"] = cu.n
    truth = _ground_truth(cu, act, sv, win, seed, fmt, friction_counts, share, counts, comments)
    text = json.dumps(truth, indent=2, ensure_ascii=False)
    paths["ground_truth"].write_text(text + "\n", encoding="utf-8")
    return GenerationSummary(out, seed, customers, months, fmt, paths, counts)

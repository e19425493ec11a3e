"""A synthetic company's survey comments, with the frictions a real one plants.

Each friction has its own phrasings; detractors mention frictions, promoters praise. Built from
a seed so every test sees the same corpus.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

FRICTIONS: dict[str, list[str]] = {
    "late_delivery": [
        "My delivery arrived {n} days late",
        "The parcel came {n} days after the promised date",
        "Delivery was late again and the courier gave no update",
        "Still waiting for my order, the delivery is {n} days late",
        "The package arrived late and nobody told me about the delay",
    ],
    "billing_error": [
        "I was charged twice for the same order",
        "The invoice was wrong and I was overcharged",
        "Still waiting for my refund after {n} weeks",
        "Wrong invoice again, the bill shows charges I never made",
        "You charged my card twice and the refund has not arrived",
    ],
    "repeat_contact": [
        "This is the third time I called about the same problem",
        "I called again because nobody fixed my issue",
        "I had to contact support {n} times and it is still not resolved",
        "Called again and again, nobody fixed it",
        "Second time contacting you about this and still not resolved",
    ],
}
POSITIVE = [
    "Great service, thank you",
    "Friendly staff and quick help, love it",
    "Excellent experience, highly recommend",
    "Everything was perfect, very happy",
    "Fast and easy, great job",
]
NEUTRAL = ["It was fine", "Nothing special", "Okay overall", "As expected"]
OTHER_LANGUAGE = [
    "Die Lieferung kam drei Tage zu spät",
    "La facture était fausse et le remboursement n'est jamais arrivé",
]
OPENERS = ["", "", "Honestly, ", "Well, ", "To be fair, ", "So, ", "Hi, "]
CLOSERS = ["", "", " Thanks.", " Please pass this on.", " Order {n}.", " Regards."]
SCORES = {"late_delivery": (0, 7), "billing_error": (0, 6), "repeat_contact": (0, 5)}


def responses(n: int = 600, *, seed: int = 7, survey: str = "relationship") -> list[dict[str, Any]]:
    """Response rows (the shape of ``cxm.surveys.tables.responses``) with comments."""
    rng = random.Random(seed)
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    rows = []
    for i in range(n):
        roll = rng.random()
        if roll < 0.45:
            friction = None
            nps = rng.choice([9, 9, 10, 10, 8])
            comment = rng.choice(POSITIVE)
        elif roll < 0.55:
            friction = None
            nps = rng.choice([7, 8, 6])
            comment = rng.choice(NEUTRAL)
        elif roll < 0.95:
            friction = rng.choice(list(FRICTIONS))
            low, high = SCORES[friction]
            nps = rng.randint(low, high)
            comment = rng.choice(FRICTIONS[friction]).format(n=rng.randint(2, 9))
        else:
            friction = None
            nps = rng.randint(2, 8)
            comment = rng.choice(OTHER_LANGUAGE)
        if comment.isascii():  # vary the wording the way people do, keeping what they say
            opener, closer = rng.choice(OPENERS), rng.choice(CLOSERS).format(n=rng.randint(1, 99))
            comment = opener + (comment[0].lower() if opener else comment[0]) + comment[1:] + closer
        submitted = start + dt.timedelta(hours=i * 3)
        rows.append(
            {
                "id": f"r{i:05d}",
                "survey_key": survey,
                "survey_version": 1,
                "respondent_kind": "customer",
                "customer_id": f"c{i % 400:04d}",
                "touchpoint_key": None,
                "language": None,
                "started_at": submitted,
                "submitted_at": submitted,
                "completed": True,
                "nps": nps,
                "nps_category": "promoter" if nps >= 9 else "passive" if nps >= 7 else "detractor",
                "comment": comment,
                "source": "import",
                "friction": friction,
            }
        )
    return rows


def insert(conn: Any, rows: list[dict[str, Any]]) -> None:
    from cxm.surveys.tables import responses as table

    conn.execute(table.insert(), [{k: v for k, v in r.items() if k != "friction"} for r in rows])

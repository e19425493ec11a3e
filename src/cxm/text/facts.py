"""Text facts for every reader: sentiment annotations and theme tags, keyed by their source.

Annotations and tags are keyed by the text's source and id (a response id, a case note id), so
they follow a customer merge with the row they describe.
"""

from __future__ import annotations

import ibis.expr.types as ir
from ibis.backends import BaseBackend

from cxm.text.tables import text_annotations, text_themes

__all__ = ["sentiment", "tags", "text_annotations", "text_themes"]


def sentiment(con: BaseBackend) -> ir.Table:
    """Sentiment annotations: ``source, source_id, model, label, score, language, ...``."""
    return con.table("text_annotations")


def tags(con: BaseBackend) -> ir.Table:
    """Theme tags: ``source, source_id, taxonomy, theme_key, ...``."""
    return con.table("text_themes")

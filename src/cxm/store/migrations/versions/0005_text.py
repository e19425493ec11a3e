"""Text analytics: annotations, taxonomy themes, theme tags, trained sentiment models.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "text_annotations",
        sa.Column("source", sa.String(32), primary_key=True),
        sa.Column("source_id", sa.String(64), primary_key=True),
        sa.Column("model", sa.String(128), primary_key=True),
        sa.Column("tier", sa.String(16), nullable=False),
        sa.Column("model_version", sa.String(96), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("label", sa.String(16), nullable=False),
        sa.Column("score", sa.Float),
        sa.Column("sentences", sa.JSON),
        sa.Column("annotated_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_text_annotations_model_label", "text_annotations", ["model", "label"])
    op.create_table(
        "text_taxonomy_themes",
        sa.Column("taxonomy", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("department_key", sa.String(64)),
        sa.Column("keywords", sa.JSON, nullable=False),
        sa.Column("examples", sa.JSON, nullable=False),
        sa.Column("threshold", sa.Float, nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "text_themes",
        sa.Column("source", sa.String(32), primary_key=True),
        sa.Column("source_id", sa.String(64), primary_key=True),
        sa.Column("taxonomy", sa.String(64), primary_key=True),
        sa.Column("theme_key", sa.String(64), primary_key=True),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("similarity", sa.Float),
        sa.Column("tagged_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_text_themes_theme", "text_themes", ["taxonomy", "theme_key"])
    op.create_table(
        "text_sentiment_models",
        sa.Column("version", sa.String(96), primary_key=True),
        sa.Column("encoder", sa.String(96), nullable=False),
        sa.Column("labels", sa.JSON, nullable=False),
        sa.Column("coef", sa.JSON, nullable=False),
        sa.Column("intercept", sa.JSON, nullable=False),
        sa.Column("trained_on", sa.Integer, nullable=False),
        sa.Column("held_out", sa.Integer, nullable=False),
        sa.Column("accuracy", sa.Float, nullable=False),
        sa.Column("macro_f1", sa.Float, nullable=False),
        sa.Column("trained_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("text_sentiment_models")
    op.drop_index("ix_text_themes_theme", "text_themes")
    op.drop_table("text_themes")
    op.drop_table("text_taxonomy_themes")
    op.drop_index("ix_text_annotations_model_label", "text_annotations")
    op.drop_table("text_annotations")

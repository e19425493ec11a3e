"""Text analytics: sentiment, language, themes and taxonomies on any text (comments, tickets)."""

"""A site -> bytes: feeds in every format, HTML pages, embeds (pure)."""

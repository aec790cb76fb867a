"""Which channels an article belongs to, and the slugs that name them (pure)."""

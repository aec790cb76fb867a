"""Stable ids, slugs and dates: the identity rules and the SQLite ledger."""

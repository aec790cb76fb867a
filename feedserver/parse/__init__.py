"""Bytes of one source file -> one article record (pure)."""

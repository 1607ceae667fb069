"""Queries, one module per table: the only code that speaks SQL."""

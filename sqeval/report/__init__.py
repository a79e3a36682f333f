"""Reporters: the terminal table, the per-file CSV and the JSON document."""

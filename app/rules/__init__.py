"""Trigger rules: the condition language and the firing semantics (plain logic, no I/O)."""

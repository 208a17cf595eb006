"""Parsers of raw input: pure functions from bytes or JSON to event fields."""

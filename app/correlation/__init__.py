"""Correlation of events into incidents (plain logic; the correlate actor stores the outcome)."""

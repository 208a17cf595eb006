"""OpsConductor Event Engine: events in, incidents and safe responses out."""

__version__ = "0.1.0"

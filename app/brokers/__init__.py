"""Variants of Dramatiq's brokers (as ``dramatiq.brokers``)."""

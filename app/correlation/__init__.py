"""Correlation of events into incidents.

:mod:`.grouping` chooses an event's incident and scores severity (plain logic, no I/O);
:mod:`.store` loads events and open incidents and stores the outcome in one transaction, and
:mod:`.query` reads incidents, correlations and the topology back for the API.
"""

"""Operators working incidents: the lifecycle (acknowledge, resolve, close, reopen, assign, notes,
merge, split, auto-resolve) in :mod:`.lifecycle`, and the timeline of everything that happened to
an incident in :mod:`.timeline`. The API, the console and the CLI call these same functions.

Both read and write the database; neither sends a message.
"""

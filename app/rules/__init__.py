"""Trigger rules and response templates.

The condition language (:mod:`.conditions`), rule and template validation (:mod:`.triggers`,
:mod:`.playbooks`) are plain logic, no I/O; :mod:`.evaluation` matches stored events against the
active rules and records firings, and the store modules read and write rules in the database.
"""

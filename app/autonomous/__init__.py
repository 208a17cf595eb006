"""Autonomous response: risk, decisions, approvals, the playbook runner, rollback and learning.

The risk matrix (:mod:`.risk`) and the decision policy (:mod:`.decision`) are plain logic, no
I/O; the other modules record and read decisions, executions, approvals and outcomes in the
database, and the runner performs actions through :mod:`app.actions`.
"""

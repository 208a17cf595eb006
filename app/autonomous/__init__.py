"""Autonomous response: risk, decisions, approvals, the playbook runner, rollback and learning (plain Python)."""

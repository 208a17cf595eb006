"""The executor and rollbacker's logic: running a decision's actions under the safety rules.

Executions are created from a decision and shown in the spec's shape (:mod:`.store`); the
playbook runner (:mod:`.runner`) performs their steps through :mod:`app.actions`; approval
requests are answered in :mod:`.approvals`; completed remediations are compensated in
:mod:`.rollback`; operators' requests (execute, cancel, roll back) are checked in :mod:`.control`;
the clock's sweep (:mod:`.recovery`) resends what a lost message left stuck. Every module here
reads and writes the database.
"""

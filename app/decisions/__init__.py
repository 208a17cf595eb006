"""The decider's logic: what to do about a rule firing, and how sure to be.

The risk matrix (:mod:`.risk`) and the decision policy (:mod:`.policy`) are plain logic, no
I/O; :mod:`.maintenance` is too, but for :func:`~.maintenance.covering_window`. The other
modules read the database and write to it: the situation a decision looks at (:mod:`.context`),
the LLM's analysis (:mod:`.llm`, over the transport of :mod:`app.llm_client`), recording the
decision with the execution it hands on (:mod:`.analysis`), outcomes and operators' feedback
(:mod:`.learning`) and maintenance windows (:mod:`.maintenance_store`).
"""

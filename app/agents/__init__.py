"""The platform's agents (the AIOps design): a registry, their health, their schedule, and their one way to act.

- :mod:`.base`: what an agent implements (``run``, ``status``) and returns (:class:`AgentAction`, :class:`AgentEvent`).
- :mod:`.registry`: each agent's configuration (the design's ``AgentConfig``), audited.
- :mod:`.proposals`: an agent's proposal becomes a decision and an execution, as a rule firing does.
- :mod:`.runner`: one run of an agent, called by its actor (``app.actors.agents``).
- :mod:`.health`: heartbeats of the agents' processes; the down ones are paged.
- :mod:`.schedule`: the clock's schedule of runs.
- :mod:`.status`: what ``GET /api/v1/agents/status`` shows.

Conflicts between agents and playbooks are settled by resource leases (:mod:`app.executions.leases`).
"""

from __future__ import annotations

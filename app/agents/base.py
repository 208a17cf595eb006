"""What every agent implements, and what it hands back: the base the Terraform, Kubernetes and cost agents build on.

An agent is plain Python (unit-tested without a broker): :meth:`Agent.run` looks at its part of
the infrastructure and returns

- :class:`AgentAction` — a proposal (the design's ``AgentAction``): steps in the playbook action
  format, the resources they target, risk and expected impact. It goes through the decider, the
  approvals, the executor, the rollbacker and the audit like any playbook
  (:func:`app.agents.proposals.propose`); an agent never acts on infrastructure itself.
- :class:`AgentEvent` — something it observed (the design's ``SystemEvent``), published into the
  normal pipeline as a raw item, so it is normalized, correlated and matched by rules like any event.

The actor (``app.actors.agents``: one per kind, on queue ``agent_<kind>``) reads the agent's
configuration, calls :meth:`Agent.run` and hands the results on (:func:`app.agents.runner.run_agent`).
A new kind is a class with the two methods below, listed in :data:`IMPLEMENTATIONS`.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

#: Kinds of agents (the design's ``AgentType``).
KINDS = ("orchestrator", "terraform", "kubernetes", "cost")
#: Kinds that run as an actor on their own queue ``agent_<kind>``. The orchestrator is no process of
#: its own: the registry, the clock's schedule, the decider's cap and the executor's leases are it.
RUNNABLE_KINDS = ("terraform", "kubernetes", "cost")
#: Why each kind's proposals act, which sets their priority on a contested resource
#: (:data:`app.executions.leases.PRIORITIES`).
DEFAULT_PURPOSE = {"orchestrator": "incident", "terraform": "drift", "kubernetes": "scaling", "cost": "cost"}
#: The design's ``riskLevel`` (and ours: ``critical`` too).
RISK_LEVELS = ("low", "medium", "high", "critical")
#: ``kind -> "module:Class"`` of each implemented kind, imported when first run (the agents' own modules).
IMPLEMENTATIONS: dict[str, str] = {
    "terraform": "app.agents.terraform:TerraformAgent",
    "kubernetes": "app.agents.kubernetes:KubernetesAgent",
    "cost": "app.agents.cost:CostAgent",
}
#: ``integration type -> "module:function"`` checking an integration of that type when it is configured:
#: ``function(integration, where)`` raises :class:`~app.errors.InvalidInput` naming the field.
INTEGRATION_CHECKS: dict[str, str] = {
    "terraform": "app.agents.terraform_workspace:check",
    "kubernetes": "app.agents.kubernetes:check",
    "cost_export": "app.agents.cost:check_integration",
    "kubernetes_usage": "app.agents.cost:check_integration",
}


@dataclass(frozen=True, kw_only=True)
class AgentSettings:
    """An agent's configuration as its :meth:`Agent.run` sees it (a row of ``ops.agents``)."""

    name: str
    kind: str
    automation_level: str
    approval_required: bool
    thresholds: Mapping[str, float] = field(default_factory=dict)
    integrations: Sequence[Mapping[str, Any]] = ()
    #: The events routed to it that sent this run (:mod:`app.agents.routing`); empty for a scheduled run.
    event_ids: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class AgentAction:
    """A proposal: the design's ``AgentAction``, with its steps in the playbook action format.

    Parameters:
      type: What it does (``scale``, ``apply_plan``, ``rightsize`` ...).
      description: One sentence for the approvers.
      target_resources: ``host:<name>``, ``k8s:<ns>/<kind>/<name>``, ``tf:<workspace>:<address>``.
      risk_level: low | medium | high | critical: a floor for every step's risk.
      estimated_impact: What changes, for the approvers (``replicas 3 -> 5``).
      steps: Playbook actions (``{"id", "type": "http"|"shell"|..., ...}``), run in ``depends_on`` order.
      rollback_steps: Compensating actions, run newest first when a step fails or an operator rolls back.
      purpose: incident | scaling | cost | drift (None: the kind's :data:`DEFAULT_PURPOSE`).
      confidence: The agent's own confidence in [0, 1], if it has one (moves the decider's prior by at
        most the bounds feedback has).
      key: Identity of the proposal: one with the same key still in flight is not proposed again.
      event_id, incident_id: The event or incident it answers, if any (links and timeline).
    """

    type: str
    description: str
    target_resources: tuple[str, ...]
    steps: tuple[Mapping[str, Any], ...]
    risk_level: str = "medium"
    estimated_impact: str = ""
    rollback_steps: tuple[Mapping[str, Any], ...] = ()
    purpose: str | None = None
    confidence: float | None = None
    key: str | None = None
    event_id: str | None = None
    incident_id: str | None = None
    max_execution_time_minutes: int = 30


@dataclass(frozen=True, kw_only=True)
class AgentEvent:
    """Something an agent observed: the design's ``SystemEvent``, sent through the normal pipeline.

    It becomes a generic webhook event (``source`` ``agent:<name>``): ``resource`` is its host, so
    drift on ``tf:prod:aws_db_instance.main`` correlates with the other events of that resource.
    """

    event_type: str
    severity: str
    title: str
    resource: str
    description: str = ""
    service: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()


class Agent(Protocol):
    """What an agent kind implements."""

    def run(self, config: AgentSettings) -> Sequence[AgentAction | AgentEvent]:
        """Look, and say what should be done and what was seen. Raise only for a failed run (logged, shown in status)."""
        ...

    def status(self, config: AgentSettings) -> Mapping[str, Any]:
        """Whether it can work here (``{"ready": False, "reason": "terraform is not on PATH"}``) and what it knows."""
        ...


def implementation(kind: str) -> Agent | None:
    """An instance of the kind's agent, or None when the kind has no implementation here."""
    target = IMPLEMENTATIONS.get(kind)
    if target is None:
        return None
    module, _, name = target.partition(":")
    agent: Agent = getattr(importlib.import_module(module), name)()
    return agent

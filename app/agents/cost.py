"""The cost agent: reads cost and usage exports, finds what to cut, keeps a report per month, and says so as events.

Its integrations (``POST /api/v1/agents/config``)::

    {"type": "cost_export", "provider": "aws" | "gcp" | "azure", "path": "/exports/cur/2026-11"}
    {"type": "kubernetes_usage", "path": "/exports/k8s-usage.csv"}

``path`` is a file or a directory (read recursively; see :mod:`app.agents.cost_exports` for the
formats). Thresholds: :data:`app.agents.cost_analysis.DEFAULTS`,
:data:`app.agents.cost_workloads.DEFAULTS` (``anomaly_mad: 4`` ...) and ``max_events`` (:data:`MAX_EVENTS`).

A run reads every integration, replaces the reports of the months they cover
(:mod:`app.agents.cost_reports`) and returns an :class:`~app.agents.base.AgentEvent` for each finding
no earlier run reported: ``cost_anomaly``, ``idle_resource`` or ``oversized``. It proposes no action:
what to delete or resize is an operator's call, or the Kubernetes agent's. An integration that
cannot be read is named in the report's ``problems``; a run where none could be read fails (and its
status says why).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..db import in_transaction
from ..errors import InvalidInput
from . import cost_reports
from .base import AgentEvent, AgentSettings
from .cost_analysis import Finding, Spend, anomalies, idle_resources
from .cost_exports import PROVIDERS, ExportReader, files, rows
from .cost_workloads import Workloads

logger = logging.getLogger(__name__)

#: The integration types this agent reads.
INTEGRATIONS = ("cost_export", "kubernetes_usage")
#: New findings sent as events per run at most (threshold ``max_events``): the anomalies first, then the
#: largest savings. A first run over a big estate would otherwise flood the pipeline with idle volumes;
#: the report lists every finding.
MAX_EVENTS = 100


class CostUnreadable(InvalidInput):
    """No integration of the cost agent could be read: the run fails, and its status names why."""


def _path(integration: Mapping[str, Any], where: str) -> str:
    path = integration.get("path")
    if not isinstance(path, str) or not path.strip():
        raise InvalidInput("a cost integration names the file or directory of its export", field=f"{where}.path")
    return path


def check_integration(integration: Mapping[str, Any], where: str) -> None:
    """Checks a ``cost_export`` or ``kubernetes_usage`` integration when it is configured.

    The path is not looked up here: it is read where the agent's worker runs (its status says
    whether it is there).

    Raises:
      InvalidInput: naming ``<where>.provider`` or ``<where>.path``.
    """
    if integration.get("type") == "cost_export" and integration.get("provider") not in PROVIDERS:
        raise InvalidInput(f"provider is one of {', '.join(PROVIDERS)}", field=f"{where}.provider")
    _path(integration, where)


def resource_of(finding: Finding) -> str:
    """What the event is about: the resource (``k8s:...``, an ARN ...), or the service in its account."""
    return finding.resource or f"cost:{finding.provider}:{finding.account}/{finding.service}"


def event_of(finding: Finding) -> AgentEvent:
    return AgentEvent(event_type=finding.kind, severity=finding.severity, title=finding.title,
                      resource=resource_of(finding), service=finding.service, data=finding.as_json(),
                      tags=("cost", finding.provider))  # fmt: skip


class CostAgent:
    """The ``cost`` kind (:data:`app.agents.base.IMPLEMENTATIONS`)."""

    def __init__(self, *, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.now = now

    def read(self, config: AgentSettings) -> tuple[Spend, Workloads, list[str]]:
        """Every integration folded in, and what could not be read (``integrations[i]: why``).

        Raises:
          CostUnreadable: there is no integration to read, or none could be read.
        """
        spend, workloads, read = Spend(), Workloads(), 0
        problems: list[str] = []
        for i, integration in enumerate(config.integrations):
            where, kind = f"integrations[{i}]", integration.get("type")
            if kind not in INTEGRATIONS:
                continue
            try:
                paths = files(_path(integration, where))
                if kind == "cost_export":
                    reader = ExportReader(str(integration.get("provider")))
                    spend.add(reader.lines(paths))
                    problems.extend(f"{where}: {n} lines not read: {why}" for why, n in sorted(reader.skipped.items()))
                else:
                    skipped: dict[str, int] = {}
                    for path in paths:
                        workloads.add(rows(path), skipped)
                    problems.extend(f"{where}: {n} samples not read: {why}" for why, n in sorted(skipped.items()))
                read += 1
            except InvalidInput as e:
                logger.warning("Cost agent %r could not read %s: %s (%s).", config.name, where, e.message, e.field)
                problems.append(f"{where}: {e.message}")
            except OSError as e:
                logger.warning("Cost agent %r could not read %s: %s.", config.name, where, e)
                problems.append(f"{where}: {e.strerror or e}")
        if not read:
            raise CostUnreadable("; ".join(problems) or "no cost_export or kubernetes_usage integration is configured",
                                 field="integrations")  # fmt: skip
        return spend, workloads, problems

    def run(self, config: AgentSettings) -> Sequence[AgentEvent]:
        spend, workloads, problems = self.read(config)
        thresholds = dict(config.thresholds)
        findings = (
            anomalies(spend.daily, thresholds) + idle_resources(spend, thresholds) + workloads.findings(thresholds)
        )
        totals = spend.totals()
        new = in_transaction(lambda: cost_reports.store(config.name, totals, findings, problems, now=self.now()))
        cap = int(thresholds.get("max_events", MAX_EVENTS))
        sent = sorted(new, key=lambda f: (f.kind != "cost_anomaly", -f.estimated_monthly_savings))[: max(cap, 0)]
        logger.info("Cost agent %r: %d months, %d findings (%d new, %d sent as events), %d problems.", config.name,
                    len(totals), len(findings), len(new), len(sent), len(problems))  # fmt: skip
        return [event_of(f) for f in sent]

    def status(self, config: AgentSettings) -> Mapping[str, Any]:
        """Ready when it has an integration to read and each one's path exists (nothing is read here)."""
        ours = [(i, x) for i, x in enumerate(config.integrations) if x.get("type") in INTEGRATIONS]
        if not ours:
            return {"ready": False, "reason": "no cost_export or kubernetes_usage integration is configured"}
        missing = [f"integrations[{i}]: no export at {x.get('path')!r}" for i, x in ours
                   if not isinstance(x.get("path"), str) or not Path(x["path"]).exists()]  # fmt: skip
        bad = [f"integrations[{i}]: provider is one of {', '.join(PROVIDERS)}" for i, x in ours
               if x.get("type") == "cost_export" and x.get("provider") not in PROVIDERS]  # fmt: skip
        problems = missing + bad
        if problems:
            return {"ready": False, "reason": "; ".join(problems)}
        return {"ready": True, "integrations": len(ours)}

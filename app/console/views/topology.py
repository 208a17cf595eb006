"""The topology page: the declared dependencies drawn as SVG, with the open incidents marked on their nodes.

``GET /console/topology``. The drawing is :mod:`app.console.topology_svg` (plain logic); this view
reads the current graph (:func:`app.topology.store.load_graph`, rebuilt only when the version
changed) and the hosts, services and severity of the incidents not yet resolved. A node other than
a service links to its incidents. Beside the drawing, the agents' targets: the resources named by
agents' actions in flight or recent (their ``target_resources``) and the resource leases held now; a node
an agent's unfinished action targets carries an "A" badge on the drawing.
"""

from __future__ import annotations

from typing import Any

import falcon
from markupsafe import Markup

from ...agents.status import actions
from ...db import in_transaction
from ...executions import leases
from ...models import Incident
from ...timeutil import now
from ...topology.store import load_graph
from ..page import Page, with_query
from ..render import render
from ..topology_svg import marks_from_incidents
from ..topology_svg import render as draw

#: Incidents that mark the graph: those an operator still has to act on.
UNRESOLVED = ("open", "acknowledged", "flapping")


def _unresolved() -> list[dict[str, Any]]:
    query = Incident.select(Incident.hosts, Incident.services, Incident.severity).where(Incident.status.in_(UNRESOLVED))
    return [{"hosts": r.hosts, "services": r.services, "severity": r.severity} for r in query]


def agent_targets(graph: Any) -> list[dict[str, Any]]:
    """Each resource agents' recent actions target or a lease holds: by whom, which execution, whether in the graph."""
    held = {lease["resource"]: lease for lease in leases.listing(now=now())}
    found: dict[str, dict[str, Any]] = {}
    for x in actions(limit=100):
        for resource in x["target_resources"]:
            entry = found.setdefault(resource, {"resource": resource, "actions": [], "lease": held.get(resource)})
            entry["actions"].append(x)
    for resource, lease in held.items():
        found.setdefault(resource, {"resource": resource, "actions": [], "lease": lease})
    for entry in found.values():
        name = entry["resource"].removeprefix("host:")
        entry["in_graph"] = name in graph
        entry["active"] = entry["lease"] is not None or any(not a["finished"] for a in entry["actions"])
    return sorted(found.values(), key=lambda e: (not e["active"], e["resource"]))


def targeted_nodes(targets: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Node name -> the agents whose unfinished actions target it (the badge on the drawing)."""
    found: dict[str, list[str]] = {}
    for entry in targets:
        if entry["in_graph"]:
            agents = [a["agent"] for a in entry["actions"] if not a["finished"]]
            if agents:
                found.setdefault(entry["resource"].removeprefix("host:"), []).extend(agents)
    return found


def _href(kind: str, name: str) -> str | None:
    return None if kind == "service" else with_query("/console/incidents", host=name)


class TopologyPage(Page):
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        graph = in_transaction(lambda: load_graph(max_age_s=0))
        incidents = in_transaction(_unresolved)
        marks = marks_from_incidents(incidents)
        outside = sum(
            1 for i in incidents if not any(n in graph for n in (*(i["hosts"] or ()), *(i["services"] or ())))
        )
        targets = in_transaction(lambda: agent_targets(graph))
        # the SVG is built from escaped names only (topology_svg escapes every one)
        svg = Markup(draw(graph, marks, targeted=targeted_nodes(targets), href=_href))  # noqa: S704
        render(req, resp, "topology.html", svg=svg, unresolved=len(incidents), outside=outside,
               links=len(graph.edges), targets=targets)  # fmt: skip


def routes(deps: Any) -> list[tuple[Any, ...]]:
    return [("/console/topology", TopologyPage(deps))]

"""A topology from a NetBox export: devices become nodes, cables between interfaces become edges (plain logic).

The body holds what NetBox's REST API answers (NetBox 3.3 and later, 4.x), each list as its
``results`` or as the whole paginated answer::

    {"devices": GET /api/dcim/devices/?limit=0,
     "cables": GET /api/dcim/cables/?limit=0,
     "interfaces": GET /api/dcim/interfaces/?limit=0,     # optional
     "ip_addresses": GET /api/ipam/ip-addresses/?limit=0} # optional

Mapping:

- a device is a node named by its ``name`` (``display``, else ``device-<id>``, when unnamed); its kind
  comes from its role's slug (``role``, or ``device_role`` before NetBox 4.0): see :data:`ROLE_KINDS`,
  first match wins, anything else is ``other``; a ``criticality`` custom field of
  low/medium/high/critical is kept; its ``primary_ip4``, ``primary_ip6`` and ``oob_ip`` become the node's
  ``addresses`` (what its traps and syslog come from), with every address of ``ip_addresses`` assigned
  to one of its interfaces (an address found on two devices, as in two VRFs, is left out and counted);
- a cable whose status is ``connected`` (or has none) and whose two ends are ``dcim.interface``
  terminations becomes one ``connected_to`` edge per pair of devices at its ends, from the lower-tier
  device to the higher (server -> load balancer -> switch -> firewall -> router; among switches
  access/leaf/ToR -> distribution/aggregation -> core/spine): what a server's traffic goes through
  is what it depends on. Between equal tiers the A end depends on the B end. Cables ending on
  front/rear ports (patch panels), power or console ports, and planned or decommissioning cables
  are skipped and counted;
- an interface's device is read from the termination's nested ``object.device``, else from the
  ``interfaces`` list by the termination's ``object_id``. A cable to a device not in ``devices`` is
  refused (400 naming it): export the devices of every site the cables reach.
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidInput
from .graph import CRITICALITIES, Edge, Node
from .spec import MAX_ID, Document, address_at, check_keys

#: Keys of the body.
KEYS = ("devices", "cables", "interfaces", "ip_addresses")
#: A device's own address fields.
ADDRESS_FIELDS = ("primary_ip4", "primary_ip6", "primary_ip", "oob_ip")
#: Role slug fragment -> node kind, first match wins.
ROLE_KINDS = (
    ("load-balancer", "load_balancer"), ("loadbalancer", "load_balancer"), ("lb", "load_balancer"),
    ("adc", "load_balancer"), ("firewall", "firewall"), ("fw", "firewall"), ("router", "router"),
    ("gateway", "router"), ("switch", "switch"), ("leaf", "switch"), ("spine", "switch"), ("tor", "switch"),
    ("storage", "storage"), ("san", "storage"), ("nas", "storage"), ("database", "database"), ("db", "database"),
    ("server", "host"), ("host", "host"), ("hypervisor", "host"), ("compute", "host"), ("bare-metal", "host"),
)  # fmt: skip
#: How far from the servers each kind sits: the lower end of a cable depends on the higher one.
TIERS = {"load_balancer": 1, "switch": 2, "firewall": 3, "router": 4}
#: Among devices of one tier, role slug fragments ranked from the edge to the core.
SUBTIERS = (("access", 0), ("leaf", 0), ("tor", 0), ("distribution", 1), ("aggregation", 1), ("core", 2),
            ("spine", 2))  # fmt: skip


def parse_netbox(body: Any) -> tuple[Document, dict[str, int]]:
    """Convert a NetBox export.

    Returns:
        The map, and counts: ``devices``, ``cables`` used, ``skipped_cables`` (and ``shared_addresses``, when any).

    Raises:
        InvalidInput: naming the first fault (``devices[3].name``, ``cables[7].b_terminations[0]``).
    """
    if not isinstance(body, dict):
        raise InvalidInput("the body is an object {devices, cables, interfaces}", field="body")
    check_keys(body, "body", KEYS)
    devices = _results(body.get("devices"), "devices")
    cables = _results(body.get("cables"), "cables")
    interfaces = _results(body.get("interfaces"), "interfaces") if body.get("interfaces") is not None else []
    assigned = _results(body.get("ip_addresses"), "ip_addresses") if body.get("ip_addresses") is not None else []
    doc = Document()
    by_id: dict[Any, Node] = {}
    ranks: dict[str, tuple[int, int]] = {}
    for i, device in enumerate(devices):
        node, rank = _device(device, f"devices[{i}]")
        if node.id in doc.nodes:
            raise InvalidInput(f"two devices are named {node.id!r}", field=f"devices[{i}].name")
        doc.nodes[node.id] = node
        by_id[device.get("id")] = node
        ranks[node.id] = rank
    device_of = {
        i.get("id"): (i.get("device") or {}).get("id") for i in interfaces if isinstance(i, dict)
    }  # interface id -> device id
    shared = _add_addresses(doc, devices, assigned, by_id, device_of)
    seen: set[tuple[str, str]] = set()
    skipped = 0
    for c, cable in enumerate(cables):
        at = f"cables[{c}]"
        if not isinstance(cable, dict):
            raise InvalidInput("must be a cable object", field=at)
        status = cable.get("status")
        status = status.get("value") if isinstance(status, dict) else status
        ends = [
            _ends(cable.get(side), f"{at}.{side}", by_id, device_of) for side in ("a_terminations", "b_terminations")
        ]
        if status not in (None, "connected") or ends[0] is None or ends[1] is None:
            skipped += 1
            continue
        for a in ends[0]:
            for b in ends[1]:
                if a == b:
                    continue
                low, high = (b, a) if ranks[a] > ranks[b] else (a, b)
                if (low, high) not in seen:
                    seen.add((low, high))
                    doc.edges.append(Edge(low, high, "connected_to"))
    counts = {"devices": len(doc.nodes), "cables": len(cables) - skipped, "skipped_cables": skipped}
    return doc, {**counts, "shared_addresses": shared} if shared else counts


def _results(value: Any, path: str) -> list[Any]:
    if isinstance(value, dict) and "results" in value:
        value = value["results"]
    if not isinstance(value, list):
        raise InvalidInput(f"{path} is NetBox's answer for /api/dcim/{path}/ (or its results list)", field=path)
    return value


def _device(device: Any, at: str) -> tuple[Node, tuple[int, int]]:
    if not isinstance(device, dict):
        raise InvalidInput("must be a device object", field=at)
    name = device.get("name") or device.get("display") or (f"device-{device['id']}" if "id" in device else None)
    if not isinstance(name, str) or len(name) > MAX_ID:
        raise InvalidInput(f"a device needs a name (or an id) of at most {MAX_ID} characters", field=f"{at}.name")
    role = device.get("role") or device.get("device_role") or {}
    slug = str(role.get("slug") or role.get("name") or "").lower() if isinstance(role, dict) else ""
    kind = next((k for fragment, k in ROLE_KINDS if _has(slug, fragment)), "other")
    level = (device.get("custom_fields") or {}).get("criticality")
    level = str(level).lower() if isinstance(level, str) and level.lower() in CRITICALITIES else None
    subtier = next((rank for fragment, rank in SUBTIERS if _has(slug, fragment)), 0)
    return Node(name, kind, level), (TIERS.get(kind, 0), subtier)


def _add_addresses(
    doc: Document, devices: list[Any], assigned: list[Any], by_id: dict[Any, Node], device_of: dict[Any, Any]
) -> int:
    """Give each device's node its own addresses and those ``ip_addresses`` assigns to its interfaces.

    An address found on two devices (the same private range in two VRFs) names neither: it is left out,
    and the number of such addresses is returned.
    """
    found: dict[str, list[tuple[Any, str]]] = {}  # node -> (value, path)
    for i, device in enumerate(devices):
        for key in ADDRESS_FIELDS:
            value = device.get(key)
            if isinstance(value, dict) and value.get("address"):
                found.setdefault(by_id[device.get("id")].id, []).append((value["address"], f"devices[{i}].{key}"))
    for i, ip in enumerate(assigned):
        if not isinstance(ip, dict) or not ip.get("address"):
            continue
        target = ip.get("assigned_object") or {}
        device = (target.get("device") or {}).get("id") if isinstance(target, dict) else None
        if device is None:
            device = device_of.get(ip.get("assigned_object_id"))
        node = by_id.get(device)
        if node is not None:
            found.setdefault(node.id, []).append((ip["address"], f"ip_addresses[{i}].address"))
    parsed = {
        name: list(dict.fromkeys(address_at(value, at) for value, at in values)) for name, values in found.items()
    }
    owners: dict[str, set[str]] = {}
    for name, addresses in parsed.items():
        for address in addresses:
            owners.setdefault(address, set()).add(name)
    shared = {a for a, names in owners.items() if len(names) > 1}  # the same address in two VRFs: tells no one
    for name, addresses in parsed.items():
        node = doc.nodes[name]
        doc.nodes[name] = Node(node.id, node.kind, node.criticality, tuple(a for a in addresses if a not in shared))
    return len(shared)


def _has(slug: str, fragment: str) -> bool:
    """``fragment`` is one of the slug's dash-separated words, or (for longer fragments) a part of one."""
    words = slug.replace("_", "-").split("-")
    return fragment in words or (len(fragment) > 3 and fragment in slug)


def _ends(side: Any, at: str, by_id: dict[Any, Node], device_of: dict[Any, Any]) -> list[str] | None:
    """The devices at one end of a cable; None when that end is not an interface (a patch panel's port...)."""
    if not isinstance(side, list) or not side:
        return None
    names: list[str] = []
    for t, term in enumerate(side):
        if not isinstance(term, dict):
            raise InvalidInput("must be a termination object", field=f"{at}[{t}]")
        if (term.get("object_type") or term.get("termination_type")) != "dcim.interface":
            return None
        nested = term.get("object") or term.get("termination") or {}
        device = (nested.get("device") or {}).get("id") if isinstance(nested, dict) else None
        if device is None:
            device = device_of.get(term.get("object_id") or term.get("termination_id"))
        node = by_id.get(device)
        if node is None:
            raise InvalidInput(
                f"the interface's device ({device!r}) is not among the devices: export the devices of every site",
                field=f"{at}[{t}]",
            )
        if node.id not in names:
            names.append(node.id)
    return names

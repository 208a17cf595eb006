"""What an event's message is about, for the separation rules of :mod:`.evidence`.

Two events on one host are one problem only when they are about the same thing: a host that
cannot be reached (its monitors say "down", "unreachable"), a thing the message names (an
address, a certificate's name, an attacker's address in a security record), or a problem of the
host itself. And a network device's failure explains only connectivity symptoms below it, not a
deploy's exceptions or an alert storming on a host behind it (:func:`is_effect`).
"""

from __future__ import annotations

import re
from typing import Any

#: IPv4 addresses a message names (the entities it is about).
_ADDRESS = re.compile(r"(?<![\d.])(\d{1,3}(?:\.\d{1,3}){3})(?![\d.])")
#: Addresses and domain names (``api.example.com``, ``*.shop.example.com``) a message names.
_NAMED = re.compile(
    r"(?<![\w.*-])((?:\d{1,3}(?:\.\d{1,3}){3})|(?:\*\.)?(?:[a-z0-9-]+\.)+[a-z]{2,})(?![\w.-])", re.IGNORECASE
)
#: A host a client names in quotes (libpq's ``on host "db-1"``, MySQL's ``server on 'db-1'``), dotted or not.
_QUOTED_HOST = re.compile(r"""\b(?:host|server|on)\s*[=:]?\s*["']([a-z0-9][\w.-]*)["']""", re.IGNORECASE)
#: A proxy's backend server (HAProxy's ``Server shop_backend/app-21 is DOWN``, ``Backup Server be/app-9 is UP``).
_PROXY_SERVER = re.compile(r"\bServer [\w.:-]+/([a-z0-9][\w.-]*) is (?:DOWN|UP|going DOWN)", re.IGNORECASE)
#: A name with a path or file suffix is not an entity (``app.py``, ``nginx.conf``, klog's ``kubelet.go:2373``).
_OWN = re.compile(
    r"\.(?:py|conf|log|service|sh|js|json|yaml|yml|txt|gz|so|go|java|rb|php|cpp|hpp|kt|scala|lua|erl|exs|jar|class"
    r"|xml|ini|toml|properties|sock|pid|lock|tmp|csv|html?)$",
    re.IGNORECASE,
)
#: Nor is a class name, which is dotted like a domain but whose last part mixes cases
#: (``psycopg2.OperationalError``, ``java.net.SocketTimeoutException``, ``org.postgresql.util.PSQLException``).
_CLASS_NAME = re.compile(r"\.(?=[A-Za-z0-9]*[a-z])(?=[A-Za-z0-9]*[A-Z])[A-Za-z0-9]+$")
#: Messages saying a host as a whole is down or cannot be reached (monitoring's usual words: Nagios
#: "Host DOWN", Prometheus "InstanceDown", ping loss, a reboot, an interface "changed state to down").
_UNREACHABLE = re.compile(
    r"\b(?:down|link ?down|unreachable|not responding|packet loss|rebooting|shutting down|powered off)\b", re.IGNORECASE
)
#: Messages saying something cannot be reached or reach: what a network device's failure causes below it.
_CONNECTIVITY = re.compile(
    r"\b(?:timeout|timed out|time out|refused|(?:could not|cannot|can't|unable to|failed to) connect"
    r"|connection (?:reset|lost|closed|failed)|no route to host|health ?checks? (?:failed|failing)"
    r"|closed the connection|has gone away|broken pipe|eof detected"
    r"|(?:up)?link (?:lost|down|failed)|lost (?:connection|connectivity|contact|link|uplink)|no carrier|carrier lost"
    r"|loss of (?:signal|carrier|connectivity)|heartbeats? (?:lost|missed))\b",
    re.IGNORECASE,
)
#: Messages saying a host cannot be reached at all (its ping or host check): what a refused connection contradicts.
_UNREACHED = re.compile(r"\b(?:unreachable|not responding|packet loss)\b", re.IGNORECASE)
#: Messages saying what a host tried to reach answered it (a refused connection): the path to it works,
#: so the host is not cut off — what it names is at fault (a database down, a client's "Connection refused").
_ANSWERED = re.compile(r"\brefused\b", re.IGNORECASE)
#: Messages of a host announcing it goes down of its own accord (a reboot, a shutdown): its own doing.
_PLANNED = re.compile(
    r"\b(?:is rebooting|is (?:going down|shutting down|powering off)|rebooting now|shutdown scheduled|reboot scheduled)\b",
    re.IGNORECASE,
)
#: Node kinds whose failure cuts connectivity (see :func:`is_effect`).
NETWORK_KINDS = frozenset({"switch", "router", "firewall", "load_balancer"})
#: Node kinds a refused connection says are up: the host answered, through the network (see :func:`answered`).
ANSWERING_KINDS = NETWORK_KINDS | {"host"}
#: Node kinds whose failure explains only what its dependents say about reaching it (a database: their timeouts
#: and refused connections), not their other failures (a deploy's exceptions and 5xx that began on their own).
REACHED_KINDS = NETWORK_KINDS | {"database"}
#: Fields of CEF (``src``, ``dst``) and LEEF that name the addresses a security record is about.
_SECURITY_ADDRESSES = (("cef", "extension", ("src", "dst")), ("leef", "attributes", ("src", "dst")))


#: Event types the parsers give an interface's going down and coming up (SNMP linkDown/linkUp, the
#: Cisco, NX-OS and Junos syslog lines of ``app/data/syslog_rules.json``).
LINK_EVENT_TYPES = ("connectivity_issue", "connectivity_restored")


def link_key(event: dict[str, Any]) -> str | None:
    """linkDown/linkUp of one interface of one device share this key: ``device#interface``.

    The interface is named as the device names it (a trap's ``ifDescr``, a syslog line's interface),
    so a trap and the device's own syslog line about one interface share the key; a trap without
    ``ifDescr`` keys by ``ifIndex``.
    """
    meta = event.get("metadata") or {}
    if meta.get("trap_name") in ("linkDown", "linkUp"):
        name = meta.get("ifDescr") or meta.get("ifIndex")
    elif event.get("event_type") in LINK_EVENT_TYPES:
        # An interface, or a BGP session (its neighbor: the trap's bgpPeerTable index, the syslog line's neighbor)
        name = meta.get("interface") or meta.get("neighbor")
    else:
        return None
    return None if name is None or name == "" else f"{event.get('host')}#{name}"


def mentions_of(event: dict[str, Any], title: str) -> set[str]:
    """The addresses and names ``title`` names, and a security record's addresses, other than the event's host."""
    host = event.get("host")
    named = (*_NAMED.findall(title), *_QUOTED_HOST.findall(title), *_PROXY_SERVER.findall(title))
    return {m for m in named if m != host and not _OWN.search(m) and not _CLASS_NAME.search(m)} | (
        security_addresses(event) - {host}
    )


#: Ends the subject of a message saying its host cannot reach what it names (see :func:`one_problem`).
CUT_OFF = " (cannot reach)"
#: The subject of a message saying its host cannot reach something it does not name (see :func:`subject_of`).
UNNAMED_CUT = "something" + CUT_OFF
#: The subject of a host announcing it goes down of its own accord (a reboot, a shutdown: see :func:`one_problem`).
PLANNED = "reboot"


def subject_of(title: str, mentions: set[str]) -> str:
    """What an event says about its host, for the ``host`` evidence: ``"down"`` (the host cannot be reached),
    ``"names <what>"`` (it is about the things it names: a certificate, an address; ending in :data:`CUT_OFF`
    when it says the host cannot reach them), else ``""`` (a problem of the host).

    Events of different subjects on one host are not tied by the host: a host check failing while the
    switch above it is down, and an attacker's password guesses on that host, are two problems; so are
    a certificate's expiry and another attacker's guesses. But see :func:`one_problem`.
    """
    if _PLANNED.search(title):
        return PLANNED
    if _UNREACHABLE.search(title):
        # Down, says the host of something it names (a proxy's backend server): that thing cannot be reached from
        # it, not the host itself (which said so).
        return f"names {' '.join(sorted(mentions))}{CUT_OFF}" if mentions and _PROXY_SERVER.search(title) else "down"
    if not mentions:
        # A message saying its host cannot reach something it does not name (a client's lost database
        # connection) is about that path, not about the host: not one problem with the host's full disk.
        return UNNAMED_CUT if _CONNECTIVITY.search(title) and not _ANSWERED.search(title) else ""
    named = f"names {' '.join(sorted(mentions))}"
    return named + CUT_OFF if _CONNECTIVITY.search(title) and not _ANSWERED.search(title) else named


def one_problem(subject: str, other: str) -> bool:
    """Whether events of these subjects on one host are about one thing: the same subject, or the host's
    connectivity — the host cannot be reached (``"down"``) and it cannot reach what it names (an envoy's
    upstream timeouts on a host its ping check finds unreachable: whatever cut the host off caused both,
    and without a topology nothing else ties them)."""
    if subject == other:
        return True
    if {subject, other} == {"down", PLANNED}:
        return True  # the host found down after it announced its reboot (see :func:`.evidence.weigh`: after, only)
    return (subject == "down" and other.endswith(CUT_OFF)) or (other == "down" and subject.endswith(CUT_OFF))


def answered(title: str) -> bool:
    """Whether the message says what its host tried to reach answered (a refused connection): that host is up and
    reachable, and only what should listen on it is not — its going down or unreachable is another problem."""
    return bool(_ANSWERED.search(title))


def is_address(name: str) -> bool:
    """Whether a name a message names is an IPv4 address (a peer: an attacker, a client), not a host or domain name."""
    return bool(_ADDRESS.fullmatch(name))


def unreached(title: str) -> bool:
    """Whether the message says its host cannot be reached (unreachable, not responding, packet loss), which a
    refused connection to it contradicts (:func:`answered`)."""
    return bool(_UNREACHED.search(title))


def is_effect(title: str, subject: str) -> bool:
    """Whether a message is a connectivity symptom: its host is down or unreachable, or it cannot reach
    something (a timeout, a reset connection) — what a failing network device causes below it. A host
    announcing its own reboot or shutdown is going down of its own accord: no failure above it explains that;
    nor does it explain a refused connection: what the host tried to reach answered (the path works)."""
    if _PLANNED.search(title) or _ANSWERED.search(title):
        return False
    return subject == "down" or bool(_CONNECTIVITY.search(title))


def security_addresses(event: dict[str, Any]) -> set[str]:
    """The source and destination addresses of a CEF or LEEF record (what it is about, not in its title)."""
    meta = event.get("metadata") or {}
    found: set[str] = set()
    for fmt, part, fields in _SECURITY_ADDRESSES:
        values = (meta.get(fmt) or {}).get(part) if isinstance(meta.get(fmt), dict) else None
        if isinstance(values, dict):
            found |= {str(values[f]) for f in fields if values.get(f) and _ADDRESS.fullmatch(str(values[f]))}
    return found

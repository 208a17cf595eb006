"""Where an action's HTTP request may go: ``HTTP_ACTION_ALLOW``, and never a cloud metadata service.

The host is resolved when the request is made and every address it resolves to is checked; the
request then goes to the checked address (the name still names the server in ``Host`` and TLS),
so a name that resolves elsewhere a moment later (DNS rebinding) changes nothing.

Refused unless listed explicitly: link-local networks (169.254.0.0/16, fe80::/10, where cloud
metadata services answer) and the metadata addresses 169.254.169.254, fd00:ec2::254,
100.100.100.200 and ``metadata.google.internal``. Explicitly means an address or network entry
inside the refused range (``169.254.169.254``, ``169.254.0.0/16``), or the metadata name itself:
``0.0.0.0/0`` does not list them.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..errors import ActionNotAllowed

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Link-local networks and cloud metadata addresses: refused unless an entry inside them is listed.
REFUSED_NETWORKS: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(n) for n in ("169.254.0.0/16", "fe80::/10", "100.100.100.200/32", "fd00:ec2::254/128")
)
#: Cloud metadata services (inside the refused networks), named in refusals.
METADATA_ADDRESSES = frozenset({"169.254.169.254", "fd00:ec2::254", "100.100.100.200"})
#: Metadata services by name (they also resolve to a refused address).
REFUSED_NAMES = frozenset({"metadata.google.internal"})

Resolver = Callable[[str, int], list[str]]


class Unresolvable(Exception):
    """The target's name does not resolve (a failed request, not a refusal)."""


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to for a TCP connection on ``port``.

    Raises:
      Unresolvable: the name does not resolve.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as e:
        raise Unresolvable(f"cannot resolve {host!r}: {e}") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _address(text: str) -> IPAddress | None:
    try:
        # a scope id (fe80::1%eth0) is not part of the address
        address = ipaddress.ip_address(text.strip("[]").split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True)
class TargetPolicy:
    """The parsed ``HTTP_ACTION_ALLOW``: hostnames, ``*.suffix`` patterns, addresses and networks.

    An empty policy allows any host but the refused ranges.
    """

    names: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> TargetPolicy:
        """Raises ``ValueError`` naming an entry that is no hostname, pattern, address or network."""
        names, suffixes, networks = set(), [], []
        for raw in entries:
            entry = raw.strip().lower().rstrip(".")
            if not entry:
                continue
            if entry.startswith("*."):
                suffixes.append(entry[1:])
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            if not all(label and label.replace("-", "").replace("_", "").isalnum() for label in entry.split(".")):
                raise ValueError(f"{raw!r} is not a hostname, *.suffix, IP address or CIDR network")
            names.add(entry)
        return cls(frozenset(names), tuple(suffixes), tuple(networks))

    @property
    def open(self) -> bool:
        return not (self.names or self.suffixes or self.networks)

    def _lists_inside(self, address: IPAddress, refused: IPNetwork) -> bool:
        return any(
            address in n and n.version == refused.version and n.subnet_of(refused)  # type: ignore[arg-type]
            for n in self.networks
        )

    def check(self, host: str, port: int, *, resolver: Resolver = resolve, allow_list: bool = True) -> list[str]:
        """The addresses a request to ``host`` may connect to.

        Parameters:
          host: The URL's host (a name or an address).
          port: The URL's port, for resolution.
          allow_list: Whether the listed entries restrict the host (``http`` actions); without it
            only the refused ranges apply (notification webhooks).

        Raises:
          ActionNotAllowed: the host, or an address it resolves to, is refused.
          Unresolvable: the name does not resolve.
        """
        name = host.strip("[]").lower().rstrip(".")
        literal = _address(name)
        explicit_name = name in self.names
        if name in REFUSED_NAMES and not explicit_name:
            raise ActionNotAllowed(f"{host} is a cloud metadata service; list it in HTTP_ACTION_ALLOW to call it")
        texts = [str(literal)] if literal is not None else resolver(name, port)
        addresses = [a for a in (_address(t) for t in texts) if a is not None]
        for address in addresses:
            refused = next((n for n in REFUSED_NETWORKS if address.version == n.version and address in n), None)
            if (
                refused is not None
                and not (explicit_name and name in REFUSED_NAMES)
                and not self._lists_inside(address, refused)
            ):
                what = "a cloud metadata address" if str(address) in METADATA_ADDRESSES else "link-local"
                raise ActionNotAllowed(
                    f"{host} resolves to {address}, {what}: refused unless HTTP_ACTION_ALLOW lists it"
                )
        if allow_list and not self.open:
            by_name = explicit_name or any(name.endswith(suffix) for suffix in self.suffixes)
            by_address = bool(addresses) and all(any(a in n for n in self.networks) for a in addresses)
            if not (by_name or by_address):
                raise ActionNotAllowed(f"{host} is not in HTTP_ACTION_ALLOW")
        return [str(a) for a in addresses]


def pinned(url: str, address: str) -> tuple[str, dict[str, str], dict[str, Any]]:
    """``url`` sent to ``address``: the URL with the address as host, the ``Host`` header and TLS name.

    Returns:
      ``(url, headers, extensions)``: extra headers and httpx request extensions to send with it.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    if _address(host) is not None:
        return url, {}, {}  # an address already: nothing resolves, nothing to pin
    shown = f"[{address}]" if ":" in address else address
    user = parts.netloc.rpartition("@")[0]
    netloc = f"{user}@{shown}" if user else shown
    authority = host if parts.port is None else f"{host}:{parts.port}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    extensions: dict[str, Any] = {"sni_hostname": host} if parts.scheme == "https" else {}
    return parts._replace(netloc=netloc).geturl(), {"Host": authority}, extensions

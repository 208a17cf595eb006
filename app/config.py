"""Settings: the only module that reads the environment.

Every variable is documented in the README. :func:`load_settings` is called by
the composition roots (CLI, WSGI entry point, worker entry point); nothing
reads the environment at import time. The settings a process was bootstrapped
with are held here (:func:`set_settings`, :func:`get_settings`), as Dramatiq
holds its global broker in its broker module.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

from .errors import OpsConductorError

#: A number read from the environment.
T = TypeVar("T", int, float)

#: Embedded default: a SQLite file under ./var, relative to the working directory.
DEFAULT_DATABASE_URL = "sqlite:///var/opsconductor.db"

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
#: Default weight of each kind of correlation evidence (app/correlation/evidence.py); other_service is contrary.
CORRELATION_WEIGHTS = {"fingerprint": 1.0, "topology": 0.9, "service": 0.6, "template": 0.6, "entity": 0.6,
                       "host": 0.5, "nearby": 0.3, "other_service": -0.4}  # fmt: skip
AUTONOMY_MODES = ("off", "suggest", "auto")
#: RabbitMQ queue types (RABBITMQ_QUEUE_TYPE): classic for one node, quorum for a replicated cluster.
QUEUE_TYPES = ("classic", "quorum")


class ConfigError(OpsConductorError, ValueError):
    """An environment variable holds a value that cannot be used."""


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Typed, immutable configuration of one process."""

    port: int = 3009
    database_url: str = DEFAULT_DATABASE_URL
    #: None means Dramatiq's in-process broker (all-in-one mode only).
    rabbitmq_url: str | None = None
    #: Type of every queue the product declares (work, ``.DQ``, ``.XQ``): classic | quorum.
    rabbitmq_queue_type: str = "classic"
    admin_key: str | None = field(default=None, repr=False)
    log_level: str = "INFO"
    dedup_window_seconds: int = 300
    #: Largest accepted HTTP body, in bytes.
    max_body_bytes: int = 1024 * 1024
    #: Largest topology body (PUT, PATCH, NetBox import), in bytes: 10,000 nodes and their edges are ~2 MB.
    topology_max_body_bytes: int = 32 * 1024 * 1024
    syslog_udp_port: int = 5514
    syslog_tcp_port: int = 5514
    syslog_tls_port: int = 6514
    syslog_tls_cert: str | None = None
    syslog_tls_key: str | None = None
    #: Concurrent TCP and TLS syslog connections; more are closed at once (counted, logged).
    syslog_max_connections: int = 2000
    #: A TCP or TLS syslog connection that sends nothing for this long is closed, in seconds.
    syslog_idle_timeout_s: float = 300.0
    #: A TLS client that has not finished its handshake within this is dropped, in seconds.
    syslog_tls_handshake_timeout_s: float = 10.0
    snmp_trap_port: int = 1162
    snmp_communities: tuple[str, ...] = ("public",)
    snmp_v3_users: str = ""
    spool_dir: str = "var/spool"
    #: Seconds between two reports of a receiver's counters to the database (console health, /metrics).
    receiver_report_s: float = 15.0
    #: Receive buffer asked for per UDP socket of the receivers, in bytes (needs net.core.rmem_max at least this,
    #: or CAP_NET_ADMIN); the default holds ~1 s of a 25,000 datagrams/s burst.
    receiver_rcvbuf_bytes: int = 16 * 1024 * 1024
    #: Set by honcho for each process it runs (HONCHO_PROCESS_NAME): a local Procfile runner.
    under_procfile_runner: bool = False
    #: off (decide and record only) | suggest (everything needs approval) | auto (low risk runs alone).
    autonomy_mode: str = "suggest"
    #: LLM analysis is used only when a key is set; any OpenAI-compatible server via the base URL.
    openai_api_key: str | None = field(default=None, repr=False)
    openai_base_url: str | None = None
    openai_model: str = "gpt-4o-mini"
    #: Total time the decider gives the LLM, retries included, before the policy decides alone.
    llm_timeout_s: float = 20.0
    #: ``smtp://user:pass@host:port`` (``smtps://`` for implicit TLS); None disables email.
    smtp_url: str | None = field(default=None, repr=False)
    smtp_from: str = "opsconductor@localhost"
    notify_email_to: tuple[str, ...] = ()
    #: The console's address as people reach it, for links in notifications; None: http://localhost:<PORT>.
    public_url: str | None = None
    #: Attempts of a notification (backoff doubling from 30 s, at most an hour) before it is ``failed``.
    notify_max_attempts: int = 5
    #: Limit of one delivery attempt (an HTTP post or an SMTP exchange), in seconds.
    notify_timeout_s: float = 10.0
    #: Directory of the programs ``shell`` actions may run (by bare name); None disables shell actions.
    shell_actions_dir: str | None = None
    #: The Terraform agent's program: a name looked up on PATH or a path; None: ``terraform``, else ``tofu``.
    terraform_bin: str | None = None
    #: Hostnames, ``*.suffix`` patterns, IPs and CIDRs that ``http`` actions may call; empty: any host
    #: except link-local and cloud metadata addresses (refused unless listed).
    http_action_allow: tuple[str, ...] = ()
    #: Fernet keys of the secrets store: the first encrypts, all decrypt; empty disables secrets.
    secret_keys: tuple[str, ...] = field(default=(), repr=False)
    #: Minutes an approval request waits before it is rejected (fractions allowed).
    approval_timeout_minutes: float = 30.0
    #: Whether the person who created or last changed a rule or template may approve the runs it causes.
    approval_allow_author: bool = False
    #: Seconds a verified key is trusted before the database is asked again (the delay of a revocation).
    auth_cache_seconds: int = 30
    #: Seconds a key verified by the web tier stays valid while the database is unavailable (0: none).
    auth_stale_seconds: int = 3600
    #: Local business hours (risk factor), ``HH:MM-HH:MM`` on weekdays, in BUSINESS_TIMEZONE.
    business_hours: str = "09:00-17:00"
    business_timezone: str = "UTC"
    #: Days event data is kept (raw and processed events, correlations, closed incidents); 0 keeps all.
    retention_days: int = 90
    #: Minutes without a new event after which the clock resolves an incident; 0 never does.
    incident_auto_resolve_minutes: int = 240
    #: Retries of a message that fails by its own fault (1 s doubling up to the max backoff between
    #: them) before it is dead-lettered; outages of the database or broker spend none of them.
    retry_limit: int = 12
    retry_max_backoff_ms: int = 300_000
    #: Correlation (app/correlation/evidence.py): evidence counts in full within this span of an
    #: incident's events, at half weight up to the look-back, beyond which nothing joins it.
    correlation_window_minutes: float = 15.0
    correlation_lookback_minutes: float = 60.0
    #: Least message-template similarity (0..1) that counts as evidence.
    correlation_similarity: float = 0.8
    #: Least total weight of evidence for an event to join an incident.
    correlation_join_score: float = 0.5
    #: Weight of each kind of evidence (CORRELATION_WEIGHT_<KIND>), over CORRELATION_WEIGHTS' defaults.
    correlation_weights: Mapping[str, float] = field(default_factory=lambda: dict(CORRELATION_WEIGHTS))
    #: A root problem that returns this many times within the flap window after its resolution is flapping.
    correlation_flap_changes: int = 3
    correlation_flap_window_minutes: float = 30.0
    #: Windows of the pairwise evidence: a dependency, the same host (routine events: the routine one), alike messages.
    correlation_causal_window_minutes: float = 3.0
    #: Two events naming one address or name (or one naming the other's host).
    correlation_entity_window_minutes: float = 5.0
    correlation_host_window_minutes: float = 5.0
    correlation_routine_window_minutes: float = 2.0
    correlation_template_window_minutes: float = 8.0
    #: Incidents an event ties together are merged when they started within this many minutes of each other.
    correlation_merge_window_minutes: float = 10.0
    #: Seconds between two heartbeats of an agent process (three missed ones: the agent is down).
    agent_heartbeat_s: float = 15.0
    #: Seconds an execution waiting for a resource another one holds waits before it asks again.
    lease_retry_s: int = 5
    #: Minutes a lower-priority execution waits behind a higher-priority holder before it is cancelled.
    lease_max_wait_minutes: float = 30.0
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        """Where people reach the console (OPSCONDUCTOR_PUBLIC_URL, else this host's PORT), without a final slash."""
        return (self.public_url or f"http://localhost:{self.port}").rstrip("/")

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith(("postgres://", "postgresql://"))


def _parsed(env: Mapping[str, str], name: str, convert: Callable[[str], T], what: str) -> T | None:
    """``name`` converted by ``convert``, None when unset or blank; ``what`` names the expected kind in the error."""
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        return convert(raw)
    except ValueError:
        raise ConfigError(f"{name} must be {what}, got {raw!r}") from None


def _int(env: Mapping[str, str], name: str, default: int, *, low: int = 0, high: int = 2**31) -> int:
    value = _parsed(env, name, int, "an integer")
    if value is None:
        return default
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _str(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    return value if value else None


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read settings from ``env`` (default: ``os.environ``).

    Raises:
      ConfigError: when a variable holds an unusable value.
    """
    env = os.environ if env is None else env
    log_level = (env.get("LOG_LEVEL") or "INFO").upper()
    if log_level not in LOG_LEVELS:
        raise ConfigError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {log_level!r}")
    autonomy_mode = (env.get("AUTONOMY_MODE") or "suggest").strip().lower()
    if autonomy_mode not in AUTONOMY_MODES:
        raise ConfigError(f"AUTONOMY_MODE must be one of {', '.join(AUTONOMY_MODES)}, got {autonomy_mode!r}")
    communities = tuple(c.strip() for c in (env.get("SNMP_COMMUNITIES") or "public").split(",") if c.strip())
    return Settings(
        port=_int(env, "PORT", 3009, low=1, high=65535),
        database_url=_str(env, "DATABASE_URL") or DEFAULT_DATABASE_URL,
        rabbitmq_url=_rabbitmq_url(env),
        rabbitmq_queue_type=_choice(env, "RABBITMQ_QUEUE_TYPE", QUEUE_TYPES, "classic"),
        admin_key=_str(env, "OPSCONDUCTOR_ADMIN_KEY"),
        log_level=log_level,
        dedup_window_seconds=_int(env, "DEDUP_WINDOW_SECONDS", 300, high=86400 * 30),
        syslog_udp_port=_int(env, "SYSLOG_UDP_PORT", 5514, low=1, high=65535),
        syslog_tcp_port=_int(env, "SYSLOG_TCP_PORT", 5514, low=1, high=65535),
        syslog_tls_port=_int(env, "SYSLOG_TLS_PORT", 6514, low=1, high=65535),
        syslog_tls_cert=_str(env, "SYSLOG_TLS_CERT"),
        syslog_tls_key=_str(env, "SYSLOG_TLS_KEY"),
        syslog_max_connections=_int(env, "SYSLOG_MAX_CONNECTIONS", 2000, low=1, high=1_000_000),
        syslog_idle_timeout_s=float(_int(env, "SYSLOG_IDLE_TIMEOUT_SECONDS", 300, low=1, high=86400)),
        syslog_tls_handshake_timeout_s=float(_int(env, "SYSLOG_TLS_HANDSHAKE_TIMEOUT_SECONDS", 10, low=1, high=600)),
        snmp_trap_port=_int(env, "SNMP_TRAP_PORT", 1162, low=1, high=65535),
        snmp_communities=communities,
        snmp_v3_users=env.get("SNMP_V3_USERS") or "",
        spool_dir=_str(env, "SPOOL_DIR") or "var/spool",
        receiver_report_s=float(_int(env, "RECEIVER_REPORT_SECONDS", 15, low=1, high=3600)),
        receiver_rcvbuf_bytes=_int(env, "RECEIVER_RCVBUF_BYTES", 16 * 1024 * 1024, low=4096, high=2**30),
        under_procfile_runner=bool(env.get("HONCHO_PROCESS_NAME")),
        autonomy_mode=autonomy_mode,
        openai_api_key=_str(env, "OPENAI_API_KEY"),
        openai_base_url=_str(env, "OPENAI_BASE_URL"),
        openai_model=_str(env, "OPENAI_MODEL") or "gpt-4o-mini",
        llm_timeout_s=float(_int(env, "LLM_TIMEOUT_SECONDS", 20, low=1, high=600)),
        smtp_url=_smtp_url(env),
        smtp_from=_str(env, "SMTP_FROM") or "opsconductor@localhost",
        notify_email_to=tuple(a.strip() for a in (env.get("NOTIFY_EMAIL_TO") or "").split(",") if a.strip()),
        public_url=_public_url(env),
        notify_max_attempts=_int(env, "NOTIFY_MAX_ATTEMPTS", 5, low=1, high=50),
        notify_timeout_s=float(_int(env, "NOTIFY_TIMEOUT_SECONDS", 10, low=1, high=300)),
        shell_actions_dir=_str(env, "SHELL_ACTIONS_DIR"),
        terraform_bin=_str(env, "TERRAFORM_BIN"),
        http_action_allow=_http_action_allow(env),
        secret_keys=_secret_keys(env),
        approval_timeout_minutes=_minutes(env, "APPROVAL_TIMEOUT_MINUTES", 30.0),
        approval_allow_author=_bool(env, "APPROVAL_ALLOW_AUTHOR", False),
        auth_cache_seconds=_int(env, "AUTH_CACHE_SECONDS", 30, low=1, high=3600),
        auth_stale_seconds=_int(env, "AUTH_STALE_SECONDS", 3600, high=7 * 86400),
        business_hours=_business_hours(env),
        business_timezone=_str(env, "BUSINESS_TIMEZONE") or "UTC",
        retention_days=_int(env, "RETENTION_DAYS", 90, low=0, high=36500),
        incident_auto_resolve_minutes=_int(env, "INCIDENT_AUTO_RESOLVE_MINUTES", 240, high=525_600),
        retry_limit=_int(env, "RETRY_LIMIT", 12, high=100),
        retry_max_backoff_ms=_int(env, "RETRY_MAX_BACKOFF_MS", 300_000, low=1_000, high=7 * 86_400_000),
        correlation_window_minutes=_minutes(env, "CORRELATION_WINDOW_MINUTES", 15.0),
        correlation_lookback_minutes=_minutes(env, "CORRELATION_LOOKBACK_MINUTES", 60.0),
        correlation_similarity=_fraction(env, "CORRELATION_SIMILARITY", 0.8),
        correlation_join_score=_fraction(env, "CORRELATION_JOIN_SCORE", 0.5, high=10.0),
        correlation_weights={
            kind: _fraction(env, f"CORRELATION_WEIGHT_{kind.upper()}", default, low=-10.0, high=10.0)
            for kind, default in CORRELATION_WEIGHTS.items()
        },
        correlation_flap_changes=_int(env, "CORRELATION_FLAP_CHANGES", 3, low=1, high=1000),
        correlation_flap_window_minutes=_minutes(env, "CORRELATION_FLAP_WINDOW_MINUTES", 30.0),
        correlation_causal_window_minutes=_minutes(env, "CORRELATION_CAUSAL_WINDOW_MINUTES", 3.0),
        correlation_entity_window_minutes=_minutes(env, "CORRELATION_ENTITY_WINDOW_MINUTES", 5.0),
        correlation_host_window_minutes=_minutes(env, "CORRELATION_HOST_WINDOW_MINUTES", 5.0),
        correlation_routine_window_minutes=_minutes(env, "CORRELATION_ROUTINE_WINDOW_MINUTES", 2.0),
        correlation_template_window_minutes=_minutes(env, "CORRELATION_TEMPLATE_WINDOW_MINUTES", 8.0),
        correlation_merge_window_minutes=_minutes(env, "CORRELATION_MERGE_WINDOW_MINUTES", 10.0),
        agent_heartbeat_s=float(_int(env, "AGENT_HEARTBEAT_SECONDS", 15, low=1, high=3600)),
        lease_retry_s=_int(env, "LEASE_RETRY_SECONDS", 5, low=1, high=3600),
        lease_max_wait_minutes=_minutes(env, "LEASE_MAX_WAIT_MINUTES", 30.0),
    )


#: The settings of this process, set once by :func:`app.runtime.bootstrap`.
_settings: Settings | None = None


def set_settings(settings: Settings) -> None:
    """Make ``settings`` the ones :func:`get_settings` returns (the composition root calls it)."""
    global _settings
    _settings = settings


def get_settings() -> Settings:
    """The settings the process was bootstrapped with.

    Raises:
      RuntimeError: :func:`app.runtime.bootstrap` has not run in this process.
    """
    if _settings is None:
        raise RuntimeError("app.runtime.bootstrap() has not run in this process")
    return _settings


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw not in ("true", "false", "1", "0", "yes", "no"):
        raise ConfigError(f"{name} must be true or false, got {raw!r}")
    return raw in ("true", "1", "yes")


def _minutes(env: Mapping[str, str], name: str, default: float) -> float:
    value = _parsed(env, name, float, "a number of minutes")
    if value is None:
        return default
    if not 0 < value <= 7 * 24 * 60:
        raise ConfigError(f"{name} must be more than 0 and at most a week, got {value}")
    return value


def _fraction(env: Mapping[str, str], name: str, default: float, *, low: float = 0.0, high: float = 1.0) -> float:
    value = _parsed(env, name, float, "a number")
    if value is None:
        return default
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low:g} and {high:g}, got {value:g}")
    return value


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    value = (env.get(name) or default).strip().lower()
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def rabbitmq_node_urls(url: str) -> tuple[str, ...]:
    """The AMQP URL of each node ``url`` lists, in order (RABBITMQ_URL may name several nodes of a cluster).

    Nodes are separated by commas (or semicolons, as Dramatiq's own ``url`` takes them). Each is a full
    URL, or, after the first, ``host:port`` alone, which takes the first URL's scheme, credentials,
    vhost and query: ``amqp://u:p@rmq1:5672/opsconductor,rmq2:5672,rmq3:5672``.

    Raises:
      ConfigError: an entry is neither an AMQP URL nor ``host[:port]``.
    """
    entries = [e.strip() for e in re.split(r"[,;]", url) if e.strip()]
    if not entries:
        raise ConfigError("RABBITMQ_URL lists no node")
    first = urlsplit(entries[0])
    if first.scheme not in ("amqp", "amqps") or not first.hostname:
        raise ConfigError(
            f"RABBITMQ_URL must start with amqp:// or amqps:// and a host, got {_no_password(entries[0])!r}"
        )
    urls = [entries[0]]
    for entry in entries[1:]:
        if "://" in entry:
            parts = urlsplit(entry)
            if parts.scheme not in ("amqp", "amqps") or not parts.hostname:
                raise ConfigError(f"RABBITMQ_URL: node {_no_password(entry)!r} is not an amqp:// or amqps:// URL")
            urls.append(entry)
            continue
        if not re.fullmatch(r"(\[[0-9a-fA-F:.]+\]|[\w.-]+)(:\d{1,5})?", entry):
            raise ConfigError(f"RABBITMQ_URL: node {entry!r} is neither a URL nor host:port")
        credentials = first.netloc.rpartition("@")[0]
        urls.append(urlunsplit(first._replace(netloc=f"{credentials}@{entry}" if credentials else entry)))
    return tuple(urls)


def _no_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)))


def _rabbitmq_url(env: Mapping[str, str]) -> str | None:
    url = _str(env, "RABBITMQ_URL") or _str(env, "CLOUDAMQP_URL")
    if url is not None:
        rabbitmq_node_urls(url)  # refuse a malformed list at start, not at the first publish
    return url


def _smtp_url(env: Mapping[str, str]) -> str | None:
    url = _str(env, "SMTP_URL")
    if url:
        if not url.startswith(("smtp://", "smtps://")):
            raise ConfigError(f"SMTP_URL must start with smtp:// or smtps://, got {url.split(':')[0]!r}")
        return url
    host = _str(env, "SMTP_HOST")
    if host:
        return f"smtp://{host}:{_int(env, 'SMTP_PORT', 25, low=1, high=65535)}"
    return None


def _public_url(env: Mapping[str, str]) -> str | None:
    url = _str(env, "OPSCONDUCTOR_PUBLIC_URL")
    if url is not None and not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", url):
        raise ConfigError(f"OPSCONDUCTOR_PUBLIC_URL must be an http(s) URL such as https://ops.example.com, got {url!r}")
    return url


def _business_hours(env: Mapping[str, str]) -> str:
    raw = (env.get("BUSINESS_HOURS") or "09:00-17:00").strip()
    if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d", raw):
        raise ConfigError(f"BUSINESS_HOURS must be HH:MM-HH:MM, got {raw!r}")
    return raw


def _http_action_allow(env: Mapping[str, str]) -> tuple[str, ...]:
    import ipaddress

    entries = tuple(e.strip().lower() for e in (env.get("HTTP_ACTION_ALLOW") or "").split(",") if e.strip())
    for entry in entries:
        name = entry.removeprefix("*.")
        try:
            ipaddress.ip_network(name, strict=False)
            continue
        except ValueError:
            pass
        if not re.fullmatch(r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*\.?", name):
            raise ConfigError(f"HTTP_ACTION_ALLOW entries are hostnames, *.suffix, IPs or CIDRs, got {entry!r}")
    return entries


def _secret_keys(env: Mapping[str, str]) -> tuple[str, ...]:
    import base64
    import binascii

    keys = tuple(k.strip() for k in (env.get("OPSCONDUCTOR_SECRET_KEYS") or "").split(",") if k.strip())
    for i, key in enumerate(keys):
        try:
            valid = len(base64.urlsafe_b64decode(key.encode())) == 32
        except (binascii.Error, ValueError):
            valid = False
        if not valid:
            raise ConfigError(f"OPSCONDUCTOR_SECRET_KEYS[{i}] is not a Fernet key (32 url-safe base64-encoded bytes)")
    return keys

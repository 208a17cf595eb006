"""``opsconductor keys``: create, list and revoke API keys."""

from __future__ import annotations

import argparse
from datetime import UTC

from .bootstrap import bootstrap_db


def cmd_keys_create(args: argparse.Namespace) -> int:
    from ..auth import create_key

    bootstrap_db()
    print(create_key(role=args.role, name=args.name, person=args.person))
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    from ..models import ApiKey

    bootstrap_db()
    for key in ApiKey.select().order_by(ApiKey.id):
        state = "revoked" if key.revoked_at else "active"
        print(f"{key.id}\t{key.prefix}…\t{key.role}\t{state}\t{key.name}\t{key.person or key.name}")
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    from datetime import datetime

    from .. import audit
    from ..db import in_transaction
    from ..models import ApiKey

    bootstrap_db()

    def revoke() -> int:
        n = ApiKey.update(revoked_at=datetime.now(UTC)).where(ApiKey.id == args.id).execute()
        if n:
            audit.record(audit.Action.API_KEY_REVOKED, actor="cli", subject=f"api_key:{args.id}")
        return n

    n = in_transaction(revoke)
    print("revoked" if n else f"no key {args.id}")
    return 0 if n else 1


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``keys create|list|revoke``."""
    from ..roles import ROLES

    keys = sub.add_parser("keys", help="manage API keys").add_subparsers(dest="keys_command", required=True)
    create = keys.add_parser("create", help="create a key and print it (once)")
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument("--name", required=True)
    create.add_argument("--person", default=None,
                        help="who holds the key (default: its name); two-person rules compare persons")  # fmt: skip
    create.set_defaults(fn=cmd_keys_create)
    keys.add_parser("list", help="list keys (never their secret)").set_defaults(fn=cmd_keys_list)
    revoke = keys.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("id", type=int)
    revoke.set_defaults(fn=cmd_keys_revoke)

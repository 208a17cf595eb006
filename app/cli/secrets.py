"""``opsconductor secrets``: set (from stdin), list, delete and rotate the named secrets templates use."""

from __future__ import annotations

import argparse
import sys

from .bootstrap import bootstrap_db


def cmd_secrets_set(args: argparse.Namespace) -> int:
    """Store the secret NAME, its value read from stdin (one trailing newline dropped), so it is in no argv or history."""
    from .. import secrets
    from ..config import load_settings
    from ..db import in_transaction

    bootstrap_db()
    value = sys.stdin.read()
    value = value[:-1] if value.endswith("\n") else value
    try:
        created = in_transaction(lambda: secrets.put(args.name, value, keys=load_settings().secret_keys, actor="cli"))
    except (secrets.InvalidInput, secrets.ActionNotAllowed) as e:
        print(f"secret {args.name} not stored: {e}", file=sys.stderr)
        return 1
    print(f"secret {args.name} {'created' if created else 'replaced'}")
    return 0


def cmd_secrets_list(args: argparse.Namespace) -> int:
    from .. import secrets
    from ..db import in_transaction

    bootstrap_db()
    for row in in_transaction(secrets.listing):
        print(f"{row['name']}\t{row['updated_at']}\t{row['updated_by'] or ''}")
    return 0


def cmd_secrets_delete(args: argparse.Namespace) -> int:
    from .. import secrets
    from ..db import in_transaction

    bootstrap_db()
    deleted = in_transaction(lambda: secrets.delete(args.name, actor="cli"))
    print(f"secret {args.name} deleted" if deleted else f"no secret {args.name}")
    return 0 if deleted else 1


def cmd_secrets_rotate(args: argparse.Namespace) -> int:
    from .. import secrets
    from ..config import load_settings
    from ..db import in_transaction

    bootstrap_db()
    try:
        n = in_transaction(lambda: secrets.rotate(keys=load_settings().secret_keys, actor="cli"))
    except secrets.ActionNotAllowed as e:
        print(f"nothing re-encrypted: {e}", file=sys.stderr)
        return 1
    print(f"re-encrypted {n} secrets with the first key of OPSCONDUCTOR_SECRET_KEYS")
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``secrets set|list|delete|rotate``."""
    vault = sub.add_parser("secrets", help="named secrets templates use as {{ secret.NAME }}").add_subparsers(
        dest="secrets_command", required=True
    )
    put_secret = vault.add_parser("set", help="store NAME, its value read from stdin (encrypted)")
    put_secret.add_argument("name")
    put_secret.set_defaults(fn=cmd_secrets_set)
    vault.add_parser("list", help="names and times, never values").set_defaults(fn=cmd_secrets_list)
    drop_secret = vault.add_parser("delete", help="delete NAME")
    drop_secret.add_argument("name")
    drop_secret.set_defaults(fn=cmd_secrets_delete)
    vault.add_parser(
        "rotate", help="re-encrypt every secret with the first key of OPSCONDUCTOR_SECRET_KEYS"
    ).set_defaults(fn=cmd_secrets_rotate)

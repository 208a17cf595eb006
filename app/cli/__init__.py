"""The ``opsconductor`` command: run, migrate, clock, keys, rules, topology, reprocess, secrets, silences, incidents,
audit, dead letters.

Each command group is a module of this package that adds its subcommands to the parser. Imports
stay inside the commands: ``run`` must monkey-patch with gevent before anything else is imported.
"""

from __future__ import annotations

import argparse

from . import audit, files, incidents, keys, processes, replay, secrets, silences


def parser() -> argparse.ArgumentParser:
    """Every command, in the order ``opsconductor --help`` lists them."""
    p = argparse.ArgumentParser(prog="opsconductor", description="OpsConductor Event Engine")
    sub = p.add_subparsers(dest="command", required=True)
    for add in (processes.add_commands, keys.add_commands, files.add_rules, files.add_topology, replay.add_reprocess,
                secrets.add_commands, silences.add_commands, incidents.add_commands, audit.add_commands,
                replay.add_dlq):  # fmt: skip
        add(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.fn(args) or 0)

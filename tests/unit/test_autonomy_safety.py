"""The safety property, over many generated incidents, contexts, templates, LLM answers and modes:
no step whose risk exceeds policy, or marked approval_required, ever runs without an approval, and
nothing from an event or an LLM's text reaches a program as anything but one verbatim argument.

Each example goes through the real decider policy and the real runner; the steps run a real
program (it appends its argv to a file), so "ran" is what the operating system saw.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from app.config import Settings
from app.decisions import policy, risk
from app.executions.runner import run
from app.executions.store import create_execution, snapshot
from app.ids import uuid7
from app.models import ProcessedEvent

HOSTILE = st.sampled_from(["$(touch PWNED)", "`touch PWNED`", "; touch PWNED", "{{ 7*7 }}", "| sh", "&& reboot",
                           "' OR 1=1 --", "\n--force", "{% for x in () %}"])  # fmt: skip
TEXT = st.one_of(HOSTILE, st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"),
                                  max_size=40))  # fmt: skip


@st.composite
def templates(draw):
    n = draw(st.integers(min_value=1, max_value=4))
    actions = []
    for i in range(n):
        actions.append({
            "id": f"a{i}",
            # a shell step is never a notification (its floor): diagnostics are the steps that may run alone
            "type": draw(st.sampled_from(["diagnostic", "diagnostic", "diagnostic", "remediation", "notification"])),
            "operation": draw(st.sampled_from([None, "diagnostic", "notification", *risk.OPERATIONS])),
            "risk_level": draw(st.sampled_from(["low", "low", "low", "medium", "high", "critical"])),
            "approval_required": draw(st.sampled_from([False, False, False, True])),
            "depends_on": [f"a{j}" for j in range(i) if draw(st.booleans())],
            "shell": {"program": "record", "args": [f"a{i}", "{{ event.title }}", "{{ event.host }}", "fixed"]},
        })  # fmt: skip
    kinds = ["investigation", "investigation", "remediation", "escalation"]
    return {"name": "generated", "response_type": draw(st.sampled_from(kinds)), "actions": actions}


@st.composite
def any_situation(draw):
    template = draw(templates())
    ids = [a["id"] for a in template["actions"]]
    llm = draw(st.one_of(st.none(), st.builds(
        SimpleNamespace,
        decision=st.sampled_from(policy.DECISIONS),
        confidence=st.floats(min_value=0, max_value=1),
        reasoning=TEXT,
        summary=TEXT,
        recommended_action_ids=st.lists(st.one_of(st.sampled_from(ids), TEXT), max_size=4).map(tuple),
    )))  # fmt: skip
    return policy.Situation(
        event={"id": "e", "title": draw(TEXT), "host": draw(TEXT), "severity": draw(st.sampled_from(["info", "high"]))},
        incident={"status": draw(st.sampled_from(["open", "open", "flapping", "closed"])), "severity": "high"},
        template=template,
        history=policy.History(
            successes=draw(st.integers(0, 50)),
            failures=draw(st.integers(0, 50)),
            confidence_adjustment=draw(st.floats(-0.5, 0.2)),
            requires_approval=draw(st.booleans()),
        ),  # fmt: skip
        context=risk.Context(
            system_criticality=draw(st.sampled_from(risk.RISK_LEVELS)),
            business_hours=draw(st.booleans()),
            maintenance_window=draw(st.booleans()),
        ),  # fmt: skip
        maintenance=draw(st.sampled_from([None, None, "patching"])),
        mode=draw(st.sampled_from(["off", "suggest", "auto", "auto", "auto"])),
        llm=llm,
    )


#: The examples' seed: the digest hypothesis derived from this test's first source text.
EXAMPLES_SEED = int(
    "24848737762618663979146410298035187733136989848442882510673661773536443895936607429870641553145092"
    "053994298122816261"
)
#: Steps that ran across the examples: the property must not hold only because nothing ran.
RAN: list[list[str]] = []


@st.composite
def mostly_benign(draw):
    """Near the autonomous path: auto mode, a low-criticality asset after hours, a confident decision;
    the generated actions (some of them risky) decide what may run."""
    s = draw(any_situation())
    confident = SimpleNamespace(decision="investigate", confidence=draw(st.floats(0.81, 1.0)), reasoning=draw(TEXT),
                                summary=draw(TEXT), recommended_action_ids=())  # fmt: skip
    return policy.Situation(
        event=s.event, incident={"status": "open", "severity": "high"}, template=s.template,
        history=policy.History(successes=draw(st.integers(0, 20))),
        context=risk.Context(system_criticality="low", business_hours=False, maintenance_window=draw(st.booleans())),
        maintenance=s.maintenance, mode="auto", llm=draw(st.sampled_from([None, confident])),
    )  # fmt: skip


situations = st.one_of(any_situation(), mostly_benign(), mostly_benign(), mostly_benign())


@pytest.fixture
def sandbox(tmp_path: Path, sqlite_db):
    programs = tmp_path / "programs"
    programs.mkdir()
    log = tmp_path / "argv.jsonl"
    (programs / "record").write_text(
        f"#!/usr/bin/env python3\nimport json, sys\nopen({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
    )
    (programs / "record").chmod(0o755)
    return SimpleNamespace(programs=programs, log=log, root=tmp_path)


# derandomize derives the examples from this function's source text, so renaming a module it calls
# would draw others: the seed pins the ones drawn when the test was written (RAN counts their steps).
@seed(EXAMPLES_SEED)
@settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(s=situations)
def test_nothing_risky_runs_without_approval_and_nothing_reaches_a_shell(sandbox, s):
    sandbox.log.write_text("")
    d = policy.decide(s)
    if not d.execute:
        return
    # Given the execution the decider would create, for a stored event with the generated text
    event = ProcessedEvent.create(id=uuid7(), source_type="webhook", event_type="x", severity="high",
                                  source_host=s.event["host"], title=s.event["title"],
                                  occurred_at=datetime.now(UTC), fingerprint="f")  # fmt: skip
    assert s.template is not None
    execution = create_execution(definition=snapshot(s.template, d.actions, d.assessments, d.gated),
                                 requested_by="decider", decision_id=None, event_id=event.id)  # fmt: skip
    # When the runner runs it with nobody approving anything
    run(str(execution.id), settings=Settings(shell_actions_dir=str(sandbox.programs)))
    ran = [json.loads(line) for line in sandbox.log.read_text().splitlines()]
    RAN.extend(ran)
    by_id = {a.action_id: a for a in d.assessments}
    for argv in ran:
        assessment = by_id[argv[0]]
        # Then every step that ran was within policy, in auto mode, with confidence above 0.8 ...
        assert s.mode == "auto" and d.confidence > policy.CONFIDENCE_TO_ACT
        assert assessment.score <= risk.APPROVAL_THRESHOLD and not assessment.approval_required
        assert not s.history.requires_approval
        action = next(a for a in s.template["actions"] if a["id"] == argv[0])
        assert action["approval_required"] is False and action["risk_level"] == "low"
        # ... no remediation ran inside a maintenance window ...
        assert not (s.maintenance and assessment.category == "remediation")
        # ... and the event's text arrived as single verbatim arguments, never interpreted
        assert argv == [argv[0], s.event["title"], s.event["host"], "fixed"]
    assert not list(sandbox.root.rglob("PWNED")) and not list(Path.cwd().glob("PWNED"))


def test_the_generated_situations_did_run_steps():
    # The property above is not vacuous: the generator reaches the autonomous path often.
    assert len(RAN) >= 30, f"only {len(RAN)} steps ran"

"""The care desk (issue 14) through the domain and the console surface: saved replies with
their variables, tag rules at ingest, manual tags, the tag filter, digests and reports by
tag, VIPs, and the config errors for all of it."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from bot import desk
from bot.cli import main
from bot.commands import run_command
from bot.config import Config, load_config, parse_config
from bot.delivery import DryRunPublisher, PublishWorker
from bot.digest import build_digest
from bot.errors import ConfigError, Refusal
from bot.models import Actor, CaseState, Classification, Intent, Priority, Sentiment
from bot.ports import FixedClock
from bot.service import CareService
from bot.store import Store
from handlers.console import ConsoleSurface, render_card, run_line
from handlers.slack_cards import case_card, validate_blocks
from handlers.slack_digest import digest_message, digest_text
from handlers.teams_cards import case_card as teams_card
from handlers.teams_cards import digest_card
from tests.conftest import AGENT, AGENT2, LEAD, MKT, START, config_data, mention

ANA = Actor("U0AGENT1", name="ana.lopez")  # the [[people]] entry names her "Ana López"
SORRY = (
    "Hi {first_name}, we're sorry. Please DM us your booking ref (case {case}). {agent_first_name}"
)


def desk_data(**overrides: Any) -> dict[str, Any]:
    data = config_data(
        saved_replies=[
            {"id": "sorry", "title": "Apology, ask for DM", "text": SORRY, "departments": ["care"]},
            {"id": "thanks", "title": "Thanks", "text": "Thanks {first_name}! {brand}"},
            {
                "id": "praise",
                "title": "Praise reply",
                "text": "So glad you enjoyed it, {first_name}!",
                "intents": ["praise"],
            },
            {"id": "long", "title": "Too long for X", "text": "Hi {first_name}! " + "x" * 290},
            {"id": "mkt", "title": "Marketing only", "text": "Hi!", "departments": ["marketing"]},
        ],
        tag_rules=[
            {"tag": "refund", "keywords": ["refund", "money back"]},
            {"tag": "late", "regex": r"\bdelay(ed)?\b"},
            {"tag": "angry-complaint", "intents": ["complaint"], "keywords": ["worst"]},
            {"tag": "bluesky", "networks": ["bluesky"]},
            {"tag": "reach", "min_followers": 1000},
            {"tag": "spanish", "languages": ["es"]},
        ],
        vip={"min_followers": 50000, "verified": True, "handles": ["@BigJournalist"]},
        people=[{"id": "ana", "name": "Ana López", "slack": "U0AGENT1"}],
    )
    data.update(overrides)
    return data


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return parse_config(desk_data(), base_dir=tmp_path)


def ingest(service: CareService, text: str | None = None, **fields: Any) -> int:
    stats = service.ingest(mention(text, **fields) if text else mention(**fields))
    assert stats.created == 1
    return stats.case_ids[0]


def audit_of(service: CareService, case_id: int, action: str) -> list[dict[str, Any]]:
    return [r for r in service.audit_trail(case_id) if r["action"] == action]


# ------------------------------------------------------------------ config errors


def _problems(**overrides: Any) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        parse_config(desk_data(**overrides))
    return raised.value.problems


def test_an_unknown_variable_is_a_config_error_with_its_key_path() -> None:
    problems = _problems(saved_replies=[{"id": "a", "title": "A", "text": "Hi {firstname}"}])
    assert len(problems) == 1
    assert problems[0].startswith("saved_replies[0].text: unknown variable(s) {firstname}")
    assert "{first_name}" in problems[0]


@pytest.mark.parametrize(
    "text", ["Hi {first_name, 50% off", "Thanks from {{brand}}", "Hi {first name}", "Ta }"]
)
def test_a_brace_outside_a_variable_is_a_config_error(text: str) -> None:
    """It would reach the customer as typed."""
    problems = _problems(saved_replies=[{"id": "a", "title": "A", "text": text}])
    assert len(problems) == 1
    assert problems[0].startswith("saved_replies[0].text: a { or } that is not part")


def test_a_bad_regex_is_a_config_error_with_its_key_path() -> None:
    problems = _problems(tag_rules=[{"tag": "x", "regex": "refund("}])
    assert problems == [
        "tag_rules[0].regex: not a valid regular expression: missing ) at position 7"
    ]


def test_every_desk_problem_is_reported_at_once() -> None:
    problems = _problems(
        saved_replies=[
            {"id": "a", "title": "A", "text": "{nope}", "departments": ["legal"]},
            {"id": "a", "title": "B", "text": "fine", "intents": ["gossip"]},
        ],
        tag_rules=[{"tag": "Refund!", "keywords": ["refund"]}, {"tag": "empty"}],
        vip={"min_followers": 0},
    )
    paths = [p.split(":")[0] for p in problems]
    assert paths == [
        "saved_replies[0].text",
        "saved_replies[0].departments[0]",
        "saved_replies[1].id",
        "saved_replies[1].intents[0]",
        "tag_rules[0].tag",
        "tag_rules[1]",
        "vip.min_followers",
    ], problems
    assert "duplicate id 'a': saved_replies[0] has it too" in problems[2]
    assert "unknown department 'legal'; departments: care, marketing" in problems[1]
    assert "needs at least one condition" in problems[5]


def test_check_config_exits_2_naming_the_key(tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "socialcare.toml"
    path.write_text(
        '[bot]\nbrand = "Acme"\n[slack]\nenabled = false\n'
        '[[departments]]\nid = "care"\nname = "Care"\n'
        '[[saved_replies]]\nid = "x"\ntitle = "X"\ntext = "Hi {name}"\n'
        '[[tag_rules]]\ntag = "t"\nregex = "[a-"\n'
    )
    assert main(["check-config", "-c", str(path)]) == 2
    err = capsys.readouterr().err
    assert "saved_replies[0].text: unknown variable(s) {name}" in err
    assert "tag_rules[0].regex: not a valid regular expression" in err


# ------------------------------------------------------------------ pure rules


def test_variables_are_filled_once_with_sensible_fallbacks(config: Config) -> None:
    def values(name: str, actor: Actor) -> dict[str, str]:
        return desk.saved_reply_values(
            config, case_id=7, handle="maya", author_name=name, actor=actor
        )

    assert values("Maya López", ANA) == {
        "first_name": "Maya",
        "handle": "@maya",
        "case": "7",
        "agent_first_name": "Ana",  # [[people]] name beats the surface's user name
        "brand": "Acme Air",
    }
    assert values("", Actor("U0AGENT2", name="bo.smith"))["first_name"] == "@maya"
    assert values("🔥🔥", AGENT2)["first_name"] == "@maya"
    assert values("", Actor("U0AGENT2", name="bo.smith"))["agent_first_name"] == "Bo"
    assert (
        values("", Actor("6b1a2c3d-0000-4000-8000-00000000a001", name="Jo Ng"))["agent_first_name"]
        == "Jo"
    )
    assert values("", AGENT2)["agent_first_name"] == "Acme Air"  # nothing known: the brand
    assert values("{case} Smith", ANA)["first_name"] == "Smith"
    # Each variable is filled once: a value that looks like a variable stays as it is.
    assert desk.fill("Hi {first_name}, {case}", {"first_name": "{case}", "case": "7"}) == (
        "Hi {case}, 7"
    )


def test_the_picker_offers_the_departments_replies_first_filtered_by_intent(
    config: Config,
) -> None:
    ids = [r.id for r in desk.saved_replies_for(config, "care", Intent.COMPLAINT)]
    assert ids == ["sorry", "thanks", "long"]
    ids = [r.id for r in desk.saved_replies_for(config, "marketing", Intent.PRAISE)]
    assert ids == ["mkt", "thanks", "praise", "long"]


def _reading(intent: Intent = Intent.COMPLAINT, language: str = "en") -> Classification:
    return Classification(intent, Sentiment.NEGATIVE, Priority.NORMAL, True, language)


@pytest.mark.parametrize(
    ("text", "fields", "intent", "language", "tags"),
    [
        ("I want my money back", {}, Intent.COMPLAINT, "en", ["refund"]),
        ("Refund? now", {}, Intent.QUESTION, "en", ["refund"]),
        ("refunded already, thanks", {}, Intent.PRAISE, "en", []),
        ("flight delayed again", {}, Intent.COMPLAINT, "en", ["late"]),
        ("the delays are fine", {}, Intent.QUESTION, "en", []),
        ("worst airline", {}, Intent.COMPLAINT, "en", ["angry-complaint"]),
        ("worst joke ever, loved it", {}, Intent.PRAISE, "en", []),
        ("hello", {"network": "bluesky", "author_handle": "m.bsky.social"}, Intent.OTHER, "en",
         ["bluesky"]),
        ("hello", {"author_followers": 1000}, Intent.OTHER, "en", ["reach"]),
        ("hello", {"author_followers": 999}, Intent.OTHER, "en", []),
        ("hola", {}, Intent.OTHER, "es", ["spanish"]),
        ("hello", {"author_verified": True}, Intent.OTHER, "en", ["vip"]),
        ("hello", {"author_handle": "bigjournalist"}, Intent.OTHER, "en", ["vip"]),
        ("refund, delayed", {"author_followers": 60000}, Intent.COMPLAINT, "en",
         ["late", "reach", "refund", "vip"]),
    ],
)  # fmt: skip
def test_tag_rules(
    config: Config,
    text: str,
    fields: dict[str, Any],
    intent: Intent,
    language: str,
    tags: list[str],
) -> None:
    assert desk.ingest_tags(config, mention(text, **fields), _reading(intent, language)) == tags


@pytest.mark.parametrize(
    ("words", "add", "remove", "bad"),
    [
        (["+refund", "-spam"], ["refund"], ["spam"], []),
        (["lost-bag", "#late"], ["lost-bag", "late"], [], []),
        (["+Refund", "-a_b", "+-x", "+x-"], [], [], ["+Refund", "-a_b", "+-x", "+x-"]),
        (["+" + "a" * 41], [], [], ["+" + "a" * 41]),
    ],
)
def test_tag_words(words: list[str], add: list[str], remove: list[str], bad: list[str]) -> None:
    assert desk.parse_tag_changes(words) == (add, remove, bad)


# ------------------------------------------------------------------ ingest


def test_tag_rules_tag_cases_at_ingest_in_the_same_transaction(service: CareService) -> None:
    case_id = ingest(service, "@AcmeAir flight delayed, I want a refund")
    assert service.view(case_id).tags == ["late", "refund"]
    created = audit_of(service, case_id, "case.created")[0]
    assert json.loads(created["detail"])["tags"] == ["late", "refund"]
    untagged = ingest(service, "@AcmeAir what time is boarding?", author_id="9")
    assert service.view(untagged).tags == []


@pytest.mark.parametrize(
    ("fields", "text", "vip", "expected"),
    [
        ({"author_followers": 60000}, "where is my bag", True, Priority.HIGH),
        ({"author_verified": True}, "where is my bag", True, Priority.HIGH),
        ({"author_handle": "BigJournalist"}, "where is my bag", True, Priority.HIGH),
        ({"author_handle": "BigJournalist"}, "hello", True, Priority.HIGH),  # was low
        ({"author_followers": 500}, "where is my bag", False, Priority.NORMAL),
        ({"author_followers": 60000}, "medical emergency, help!", True, Priority.URGENT),
    ],
)
def test_a_vip_gets_high_priority_the_vip_tag_and_the_managers_on_the_card(
    service: CareService, fields: dict[str, Any], text: str, vip: bool, expected: Priority
) -> None:
    case_id = ingest(service, f"@AcmeAir {text}", **fields)
    view = service.view(case_id)
    assert view.case.priority is expected
    assert ("vip" in view.tags) is vip
    slack = json.dumps(case_card(view, now=START)["blocks"])
    teams = json.dumps(teams_card(view, now=START), ensure_ascii=False)
    if vip:
        assert [m.slack for m in view.vip_managers] == ["U0LEAD", "U0LEAD2"]
        assert "VIP author" in slack and "<@U0LEAD>, <@U0LEAD2>" in slack
        assert "VIP author" in teams and "U0LEAD, U0LEAD2" in teams
    else:
        assert view.vip_managers == [] and "VIP author" not in slack


def test_a_vip_card_on_teams_at_mentions_managers_who_have_a_teams_account(
    service: CareService,
) -> None:
    """Teams notifies a mentioned person when the card is posted: the managers with an
    Entra id get an <at> mention and its entity; the others are named."""
    import dataclasses

    from bot.views import ManagerRef

    case_id = ingest(service, "@AcmeAir where is my bag", author_followers=60000)
    guid = "6b1a2c3d-0000-4000-8000-00000000a001"
    view = dataclasses.replace(
        service.view(case_id),
        vip_managers=[ManagerRef(None, guid, "Ana *Lead*"), ManagerRef("U0LEAD", None, "Bo")],
    )
    card = teams_card(view, now=START)
    [line] = [part for part in card["body"] if part.get("id") == "vip"]
    assert line["text"] == "⭐ VIP author — for <at>Ana Lead</at>, Bo"
    assert card["msteams"]["width"] == "Full", "the card's own settings stay"
    assert card["msteams"]["entities"] == [
        {
            "type": "mention",
            "text": "<at>Ana Lead</at>",
            "mentioned": {"id": guid, "name": "Ana Lead"},
        }
    ]


def test_classify_shows_the_vip_priority_without_storing_anything(
    service: CareService,
) -> None:
    reading, _, _ = service.read(mention("@AcmeAir hello there", author_followers=70000))
    assert reading.priority is Priority.HIGH and "vip author" in reading.signals
    assert service.store.scalar("SELECT COUNT(*) FROM cases") == 0


# ------------------------------------------------------------------ saved replies


def test_reply_with_a_saved_reply_fills_it_in_and_publishes_after_approval(
    service: CareService, store: Store, clock: FixedClock
) -> None:
    case_id = ingest(service, author_name="Maya López")
    answer = run_command(service, ANA, f"reply {case_id} :sorry")
    filled = f"@maya Hi Maya, we're sorry. Please DM us your booking ref (case {case_id}). Ana"
    assert answer.ok and filled in answer.text
    case = service.get_case(case_id)
    assert case.state is CaseState.AWAITING_APPROVAL and case.draft_text == filled
    draft = store.one("SELECT source FROM drafts WHERE case_id = ?", [case_id])
    assert draft == {"source": "saved:sorry"}
    # The approver sees the filled-in words, and approves exactly those.
    prompt = run_command(service, LEAD, f"approve {case_id}")
    assert prompt.approval is not None and prompt.approval.text == filled
    assert run_command(service, LEAD, f"approve {case_id} {prompt.approval.text_hash[:8]}").ok
    assert PublishWorker(service, DryRunPublisher(store, clock)).drain() == 1
    posted = store.one("SELECT text FROM dry_run_posts")
    assert posted == {"text": filled}
    assert service.get_case(case_id).state is CaseState.PUBLISHED


@pytest.mark.parametrize(
    ("line", "code", "says"),
    [
        (":nope", "unknown_saved_reply", "There is no saved reply :nope"),
        (":long", "bad_reply", "over the limit of 280"),
        (":mkt", "not_for_department", "not for care cases"),
    ],
)
def test_a_saved_reply_that_cannot_be_used_is_refused_audited_and_changes_nothing(
    service: CareService, line: str, code: str, says: str
) -> None:
    case_id = ingest(service)
    before = service.get_case(case_id)
    answer = run_command(service, AGENT, f"reply {case_id} {line}")
    assert not answer.ok and says in answer.text
    after = service.get_case(case_id)
    assert (after.state, after.draft_text) == (before.state, before.draft_text)
    last = service.store.one("SELECT * FROM audit ORDER BY seq DESC LIMIT 1")
    assert last is not None and last["outcome"] == f"refused:{code}"
    assert last["case_id"] == case_id and json.loads(last["detail"])["reason"] == answer.text


def test_reply_text_that_only_looks_like_an_id_is_a_normal_reply(service: CareService) -> None:
    case_id = ingest(service)
    answer = run_command(service, AGENT, f"reply {case_id} :sorry but we are late")
    assert answer.ok
    assert service.get_case(case_id).draft_text == "@maya :sorry but we are late"


def test_saved_lists_the_replies_for_the_persons_departments(service: CareService) -> None:
    text = run_command(service, AGENT, "saved").text
    assert ":sorry  Apology, ask for DM [care] — Hi {first_name}, we're sorry." in text
    assert ":thanks  Thanks — Thanks {first_name}! {brand}" in text
    assert ":mkt" not in text  # marketing's own reply, not for care staff
    assert ":mkt" in run_command(service, MKT, "saved").text
    refused = run_command(service, Actor("U0NOBODY"), "saved")
    assert not refused.ok and "Only members and managers" in refused.text


# ------------------------------------------------------------------ manual tags and queue


def test_manual_tags_are_added_removed_audited_and_shown(service: CareService) -> None:
    case_id = ingest(service)  # "delayed ... refund": tagged late, refund at ingest
    answer = run_command(service, AGENT, f"tag #{case_id} +lost-bag -late +refund")
    assert answer.ok
    assert answer.text == f"Case #{case_id} tags +lost-bag -late; now: lost-bag, refund."
    assert service.view(case_id).tags == ["lost-bag", "refund"]
    entry = audit_of(service, case_id, "tag")[-1]
    assert entry["actor"] == "slack:U0AGENT1" and entry["outcome"] == "ok"
    assert json.loads(entry["detail"]) == {"added": ["lost-bag"], "removed": ["late"]}
    notes = service.store.query(
        "SELECT payload FROM outbox WHERE kind = 'note' AND case_id = ?", [case_id]
    )
    assert any("Tags +lost-bag -late by <@U0AGENT1>" in n["payload"] for n in notes)


@pytest.mark.parametrize(
    ("actor", "words", "code", "says"),
    [
        (AGENT, "+Refund", "bad_tag", "'+Refund': a tag is lower-case"),
        (AGENT, "+refund", "no_change", "are already so (late, refund)"),
        (MKT, "+vip", "not_allowed", "Only members of Customer Care can tag"),
    ],
)
def test_tag_refusals_are_audited_and_change_nothing(
    service: CareService, actor: Actor, words: str, code: str, says: str
) -> None:
    case_id = ingest(service)
    answer = run_command(service, actor, f"tag {case_id} {words}")
    assert not answer.ok and says in answer.text
    assert service.view(case_id).tags == ["late", "refund"]
    last = service.store.one("SELECT * FROM audit ORDER BY seq DESC LIMIT 1")
    assert last is not None
    assert (last["action"], last["outcome"], last["case_id"]) == ("tag", f"refused:{code}", case_id)


def test_the_queue_filters_by_tag(service: CareService) -> None:
    refund = ingest(service, "@AcmeAir I want a refund")
    other = ingest(service, "@AcmeAir is the lounge open?", author_id="8")
    run_command(service, AGENT, f"tag {other} +lounge")
    listing = run_command(service, AGENT, "queue care tag:refund").text
    assert listing.startswith("Open cases in care tagged refund: 1")
    assert f"#{refund}" in listing and f"#{other}" not in listing
    listing = run_command(service, AGENT, "queue tag:lounge").text
    assert listing.startswith("Open cases tagged lounge: 1") and f"#{other}" in listing
    bad = run_command(service, AGENT, "queue tag:Not_A_Tag")
    assert not bad.ok and "is not a tag filter" in bad.text


# ------------------------------------------------------------------ digest and report


def test_the_digest_shows_the_top_tags(service: CareService, config: Config) -> None:
    ingest(service, "@AcmeAir delayed, refund please")
    ingest(service, "@AcmeAir refund now", author_id="2")
    ingest(service, "@AcmeAir nice crew", author_id="3")
    digest = build_digest(config, service.store, until=START.replace(hour=12))
    assert digest.top_tags == [("refund", 2), ("late", 1)]
    assert "Top tags: refund (2), late (1)" in digest_text(digest)
    slack = digest_message(digest)["blocks"]
    assert validate_blocks(slack) == []
    top = next(b for b in slack if b["block_id"] == "top_tags")
    assert top["text"]["text"] == "*Top tags:* refund (2) · late (1)"
    teams = json.dumps(digest_card(digest), ensure_ascii=False)
    assert "Top tags: " in teams and "refund (2) \u00b7 late (1)" in teams
    again = type(digest).from_json(json.loads(json.dumps(digest.to_json())))
    assert again.top_tags == digest.top_tags


REPORT_CONFIG = """
[bot]
brand = "Acme Air"
database = "report.db"
[slack]
enabled = false
[publish]
dry_run = true
[[departments]]
id = "care"
name = "Customer Care"
[[tag_rules]]
tag = "refund"
keywords = ["refund"]
[[tag_rules]]
tag = "late"
keywords = ["delayed"]
"""


def test_report_by_tag(tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "socialcare.toml"
    path.write_text(REPORT_CONFIG)
    config = load_config(path)
    now = datetime.now(UTC)
    service = CareService(config, Store(config.database_path), clock=FixedClock(now))
    for n, text in enumerate(["refund please", "delayed, refund", "hello"]):
        service.ingest(mention(text, author_id=str(n), created_at=now))
    service.store.close()
    assert main(["report", "-c", str(path), "--by", "tag", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {r["tag"]: r["received"] for r in report["tags"]} == {"late": 1, "refund": 2}
    assert main(["report", "-c", str(path), "--by", "tag", "--format", "csv"]) == 0
    csv_lines = capsys.readouterr().out.splitlines()
    assert csv_lines[0].startswith("tag,received,")
    assert [line.split(",")[:2] for line in csv_lines[1:]] == [["late", "1"], ["refund", "2"]]


# ------------------------------------------------------------------ console surface


def _console(service: CareService) -> tuple[ConsoleSurface, Console]:
    console = Console(file=StringIO(), width=120, record=True)
    return ConsoleSurface(console, service.clock.now, {"U0AGENT1": "Ana", "U0LEAD": "Lee"}), console


def test_the_console_card_shows_tags_the_vip_call_and_saved_replies(
    service: CareService,
) -> None:
    case_id = ingest(service, author_followers=80000)
    surface, console = _console(service)
    surface.post_card("#care", service.view(case_id))
    shown = console.export_text()
    assert "Tags: #late #reach #refund #vip" in shown
    assert "VIP author: for Lee, U0LEAD2" in shown
    assert f"Saved replies: :sorry :thanks :long  (/care reply {case_id} :ID)" in shown


def test_the_console_runs_saved_reply_and_tag_commands(service: CareService) -> None:
    case_id = ingest(service)
    surface, console = _console(service)
    surface.answer(run_line(service, AGENT, "/care saved"))
    surface.answer(run_line(service, AGENT, f"/care tag {case_id} +vip"))
    surface.answer(run_line(service, ANA, f"/care reply {case_id} :thanks"))
    surface.answer(run_line(service, AGENT, f"/care reply {case_id} :nope"))
    shown = console.export_text()
    assert ":sorry  Apology, ask for DM" in shown
    assert f"Case #{case_id} tags +vip; now: late, refund, vip." in shown
    assert "@maya Thanks Maya! Acme Air" in shown
    assert "(only you can see this) There is no saved reply :nope" in shown
    card = Console(file=StringIO(), width=120, record=True)
    card.print(render_card(service.view(case_id), now=START, names={"U0LEAD": "Lee"}))
    assert "VIP author: for Lee, U0LEAD2" in card.export_text()


# ------------------------------------------------------------------ cards


def test_the_slack_card_has_the_picker_and_tags_within_block_kit_limits(
    service: CareService,
) -> None:
    case_id = ingest(service)
    card = case_card(service.view(case_id), now=START)
    assert validate_blocks(card["blocks"]) == []
    by_id = {b["block_id"]: b for b in card["blocks"]}
    picker = by_id["saved_replies"]["accessory"]
    assert picker["type"] == "static_select" and picker["action_id"] == "saved_reply"
    assert [o["value"] for o in picker["options"]] == [
        f"{case_id}:sorry",
        f"{case_id}:thanks",
        f"{case_id}:long",
    ]
    assert "`late` · `refund`" in by_id["tags"]["text"]["text"]
    assert by_id["tags"]["accessory"]["type"] == "overflow"
    service.dismiss(AGENT, case_id, "handled by phone")
    closed = case_card(service.view(case_id), now=START)
    ids = [b["block_id"] for b in closed["blocks"]]
    assert "saved_replies" not in ids and "accessory" not in json.dumps(closed)
    assert "Tags:" in json.dumps(closed)


def test_the_teams_card_has_a_saved_reply_choice_and_a_tag_field(service: CareService) -> None:
    case_id = ingest(service)
    card = teams_card(service.view(case_id), now=START)
    desk_set = next(p for p in card["body"] if p.get("id") == "desk")
    saved, tags = desk_set["actions"]
    choice = saved["card"]["body"][0]
    assert choice["type"] == "Input.ChoiceSet" and choice["id"] == "saved_reply"
    assert [c["value"] for c in choice["choices"]] == ["sorry", "thanks", "long"]
    assert saved["card"]["actions"][0]["verb"] == "saved_reply"
    field = tags["card"]["body"][0]
    assert field["type"] == "Input.Text" and field["value"] == "late refund"
    assert tags["card"]["actions"][0]["verb"] == "tag"


def test_teams_verbs_run_the_same_use_cases(service: CareService) -> None:
    from bot.actions import perform

    case_id = ingest(service)
    # Someone from Teams who is not in care is refused like any stranger.
    teams = Actor("6b1a2c3d-0000-4000-8000-00000000a001", surface="teams", name="Jo Ng")
    with pytest.raises(Refusal, match="Only members of Customer Care"):
        perform(service, teams, "saved_reply", {"case": case_id, "saved_reply": "thanks"})
    case = perform(service, AGENT, "saved_reply", {"case": case_id, "saved_reply": "thanks"})
    assert case.draft_text == "@maya Thanks Maya! Acme Air"
    perform(service, AGENT, "tag", {"case": case_id, "tags": "refund lost-bag"})
    assert service.view(case_id).tags == ["lost-bag", "refund"]


def test_a_card_with_every_desk_part_at_its_largest_stays_within_the_limits(
    service: CareService,
) -> None:
    from bot.views import ManagerRef, SavedReplyChoice
    from handlers.slack_desk import PICKER_TEXT_BUDGET
    from handlers.teams_cards import MAX_CARD_BYTES, card_bytes

    case_id = ingest(service)
    view = service.view(case_id)
    big = replace(
        view,
        tags=[f"{n:02d}-" + "t" * 37 for n in range(60)],
        saved_replies=[
            SavedReplyChoice(f"r{n}-" + "x" * 35, "<!channel> " + "T" * 90) for n in range(150)
        ],
        vip_managers=[ManagerRef(None, None, "<!here> *Name*" * 10) for _ in range(30)],
    )
    blocks = case_card(big, now=START)["blocks"]
    assert validate_blocks(blocks) == []
    text = json.dumps(blocks)
    assert "<!channel>" not in text and "<!here>" not in text
    assert "and 40 more" in text  # 20 tags shown
    picker = next(b for b in blocks if b["block_id"] == "saved_replies")["accessory"]
    # As many as fit the picker's share of the card's text (the rest: `/care saved`).
    shown = [o["text"]["text"] for o in picker["options"]]
    assert 1 <= len(shown) < 100 and sum(map(len, shown)) <= PICKER_TEXT_BUDGET
    assert card_bytes(teams_card(big, now=START)) < MAX_CARD_BYTES


def test_a_follow_up_in_the_conversation_adds_the_tags_its_words_earn(
    service: CareService,
) -> None:
    case_id = ingest(service, "@AcmeAir my bag is missing", id="500", conversation_id="500")
    assert service.view(case_id).tags == []
    stats = service.ingest(
        mention("@AcmeAir and I want my money back", id="501", conversation_id="500")
    )
    assert stats.joined == 1 and stats.case_ids == [case_id]
    assert service.view(case_id).tags == ["refund"]
    entry = audit_of(service, case_id, "tag")[-1]
    assert entry["actor"] == "system:socialcare"
    assert json.loads(entry["detail"]) == {"added": ["refund"], "removed": [], "mention_id": "501"}


def test_classify_prints_the_tags_and_the_vip_priority(tmp_path: Path, capsys: Any) -> None:
    config_path = tmp_path / "socialcare.toml"
    config_path.write_text(REPORT_CONFIG + "[vip]\nhandles = ['bigjournalist']\n")
    lines = [
        {"text": "delayed flight, refund please", "author_handle": "maya"},
        {"text": "hello there", "author_handle": "bigjournalist"},
    ]
    source = tmp_path / "m.jsonl"
    source.write_text(
        "\n".join(
            json.dumps(
                {
                    "network": "x",
                    "id": str(n),
                    "author_id": str(n),
                    "created_at": "2026-11-02T09:00:00Z",
                    **line,
                }
            )
            for n, line in enumerate(lines)
        )
    )
    assert main(["classify", str(source), "-c", str(config_path), "--format", "jsonl"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows[0]["tags"] == ["late", "refund"]
    assert rows[1]["tags"] == ["vip"] and rows[1]["priority"] == "high"
    assert "vip author" in rows[1]["signals"]


def test_a_closed_vip_case_calls_nobody_in_on_either_surface(service: CareService) -> None:
    case_id = ingest(service, "@AcmeAir where is my bag", author_followers=60000)
    service.dismiss(LEAD, case_id, "answered by phone")
    view = service.view(case_id)
    assert view.vip_managers, "still a VIP case"
    teams = teams_card(view, now=START)
    assert "VIP author" not in json.dumps(teams, ensure_ascii=False)
    assert "entities" not in teams["msteams"]
    assert "VIP author" not in json.dumps(case_card(view, now=START))

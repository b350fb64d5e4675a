"""Review of the care desk (issue 14): what a hostile post or a busy day found.

Each test reproduces one finding through the service, the console or the fakes."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.config import parse_config
from bot.errors import ConfigError
from bot.ports import FixedClock
from bot.service import CareService
from bot.store import Store
from tests.conftest import START, config_data, mention
from tests.pg import postgres_server_fixture, postgres_url_fixture  # noqa: F401
from tests.test_slack import Harness, wait_until
from tests.test_slack import harness as slack_harness

# A careless pattern: `(a|aa)+$` backtracks exponentially on a run of a's that does not
# end the post. Python's `re` would take hours on this text; it must not hold up ingest.
CATASTROPHIC = r"(a|aa)+$"


def _service(tmp_path: Path, **overrides: Any) -> CareService:
    data = config_data(**overrides)
    config = parse_config(data, base_dir=tmp_path)
    return CareService(config, Store(config.database_path), clock=FixedClock(START))


def test_a_catastrophic_tag_regex_on_an_attackers_post_times_out_instead_of_hanging(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    service = _service(
        tmp_path,
        tag_rules=[
            {"tag": "screams", "regex": CATASTROPHIC},
            {"tag": "refund", "keywords": ["refund"]},
        ],
    )
    text = "@AcmeAir refund now " + "a" * 80 + "!"
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="bot.desk"):
        stats = service.ingest(mention(text))
    assert time.monotonic() - started < 10
    assert stats.created == 1
    # The slow rule counts as not matching; the other rules still tag the case.
    assert service.view(stats.case_ids[0]).tags == ["refund"]
    warning = "\n".join(r.getMessage() for r in caplog.records)
    assert "tag rule 'screams'" in warning and "timed out" in warning
    assert "a" * 20 not in warning  # the post's words stay out of the log


def test_a_tag_regex_is_checked_by_the_engine_that_runs_it() -> None:
    # `\p{L}` is a regex-module class; `re` would reject it at load time and vice versa.
    config = parse_config(config_data(tag_rules=[{"tag": "letters", "regex": r"^\p{Lu}{5,}"}]))
    assert config.tag_rules[0].regex == r"^\p{Lu}{5,}"
    with pytest.raises(ConfigError) as raised:
        parse_config(config_data(tag_rules=[{"tag": "bad", "regex": "(unclosed"}]))
    assert raised.value.problems[0].startswith("tag_rules[0].regex: ")


# ------------------------------------------------------------------ the LLM skip

# A real complaint the offline rules read as spam: six handles called in ("many links or
# handles"), so intent spam, priority low, no reply needed.
TAGGED_EVERYONE = (
    "@AcmeAir @FAA @USDOT @Boeing @CNN @BBC you cancelled my flight and lost my bag,"
    " 3 days and no answer. Disgraceful."
)


def test_a_negative_post_the_offline_rules_call_spam_is_still_read_by_the_llm(
    tmp_path: Path,
) -> None:
    from tests.fakes.openai import start_fake_openai
    from tests.test_ai import good_answer, make, suggestions
    from tests.test_llm_combined import drain

    with start_fake_openai() as fake:
        fake.set_responder(lambda body: json.dumps(good_answer()))
        service, ai, _ = make(tmp_path, fake)
        case_id = service.ingest(mention(TAGGED_EVERYONE)).case_ids[0]
        offline = service.get_case(case_id)
        assert (offline.intent.value, offline.sentiment.value) == ("spam", "negative")
        [outcome] = drain(ai)
        assert len(fake.requests) == 1
        assert outcome["reading"] is True
        case = service.get_case(case_id)
        assert case.intent.value == "complaint" and case.needs_reply
        assert suggestions(service, case_id)


# ------------------------------------------------------------------ bulk summaries

CAMPAIGN = "@AcmeAir Bring back the free snacks! #SnackGate https://t.co/abc"
COMPLAINT = "@AcmeAir my flight was delayed 3 hours, I want a refund"


def test_a_list_that_dismisses_a_groups_copies_says_so_in_its_summary(tmp_path: Path) -> None:
    from bot.commands import run_command
    from tests.conftest import AGENT

    service = _service(tmp_path)
    leader, *copies = service.ingest_many(
        [mention(CAMPAIGN, author_id=f"b{i}", author_handle=f"fan{i}") for i in range(4)]
    ).case_ids
    other = service.ingest(mention(COMPLAINT, author_id="c1", author_handle="cus")).case_ids[0]
    answer = run_command(service, AGENT, f"dismiss {leader},{other} campaign")
    # The leader's dismissal took its untouched copies along, as the single command does:
    # the one summary must not count two cases when five were closed.
    assert [service.get_case(c).state.value for c in copies] == ["dismissed"] * 3
    assert answer.text == (
        f"Dismissed 2 cases: #{leader}, #{other}. Reason: campaign."
        f" With them 3 similar cases on #{leader}'s card: #{copies[0]}–#{copies[-1]}."
    )


# ------------------------------------------------------------------ saved replies


@pytest.mark.parametrize(
    ("name", "greeting"), [("Maya López", "Hi Maya, @"), ("", "Hi there, @"), ("🔥", "Hi there, @")]
)
def test_a_saved_reply_on_facebook_never_prints_the_page_scoped_id(
    tmp_path: Path, name: str, greeting: str
) -> None:
    from bot.desk_service import use_saved_reply
    from tests.conftest import AGENT

    service = _service(
        tmp_path,
        saved_replies=[
            {"id": "hi", "title": "Hi", "text": "Hi {first_name}, {handle}: see case {case}."}
        ],
    )
    fb_id = "7391847239012345"  # what Facebook gives apps instead of a username
    case_id = service.ingest(
        mention(
            COMPLAINT, network="facebook", author_id=fb_id, author_handle=fb_id, author_name=name
        )
    ).case_ids[0]
    case = use_saved_reply(service, AGENT, case_id, "hi")
    assert case.draft_text is not None
    assert fb_id not in case.draft_text
    who = greeting.split(",")[0].removeprefix("Hi ")
    assert case.draft_text == f"Hi {who}, {who}: see case {case_id}."


# ------------------------------------------------------------------ stale claims


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_a_claim_of_a_case_that_already_carries_a_draft_is_never_released(
    request: pytest.FixtureRequest, tmp_path: Path, engine: str
) -> None:
    """A case reassigned with its draft (or a claim the 0014 migration dated after its
    draft) has words on the card: the stale-claim rule must not say "no draft yet" and
    take it away."""
    from bot.stale import StaleClaims
    from bot.storage import open_store
    from tests.conftest import AGENT, MKT

    data = config_data()
    if engine == "postgres":
        data["bot"]["database"] = request.getfixturevalue("postgres_url")
    config = parse_config(data, base_dir=tmp_path)
    clock = FixedClock(START)
    store = open_store(config.database_target(env={}))
    try:
        service = CareService(config, store, clock=clock)
        case_id = service.ingest(mention(COMPLAINT)).case_ids[0]
        service.claim(AGENT, case_id)
        service.set_draft(AGENT, case_id, "Sorry about the delay! Please DM us your booking ref.")
        service.reassign(AGENT, case_id, "marketing")
        clock.advance(60)
        service.claim(MKT, case_id)
        stale = StaleClaims(service)
        for _ in range(3):
            clock.advance(30 * 60)
            assert stale.check(clock.now()) == {"reminder": 0, "release": 0}
        case = service.get_case(case_id)
        assert case.state.value == "claimed" and case.claimed_by == MKT.user_id
        assert case.draft_text is not None
    finally:
        store.close()


# ------------------------------------------------------------------ VIPs


def test_a_vip_joining_a_copy_paste_campaign_gets_a_card_of_their_own(tmp_path: Path) -> None:
    """Grouped under the campaign's card, a VIP's post would have no card to call the
    managers on, and "Dismiss all similar" would dismiss it with the spam."""
    from bot.bulk import dismiss_group
    from tests.conftest import AGENT

    service = _service(tmp_path, vip={"min_followers": 50000})
    fans = [mention(CAMPAIGN, author_id=f"b{i}", author_handle=f"fan{i}") for i in range(3)]
    star = mention(CAMPAIGN, author_id="v1", author_handle="bigvoice", author_followers=90000)
    leader, *copies, vip_case = service.ingest_many([*fans, star]).case_ids
    assert [service.get_case(c).group_id for c in copies] == [leader, leader]
    vip = service.get_case(vip_case)
    assert vip.group_id is None
    view = service.view(vip_case)
    assert "vip" in view.tags and view.vip_managers
    outcome = dismiss_group(service, AGENT, leader, "campaign")
    assert vip_case not in outcome.dismissed
    assert service.get_case(vip_case).state.value == "new"
    # Nor does the campaign group under a VIP who posted it first.
    first = service.ingest(
        mention("@AcmeAir Free upgrades for all! #Up", author_id="v2", author_followers=90000)
    ).case_ids[0]
    later = service.ingest_many(
        [mention("@AcmeAir Free upgrades for all! #Up", author_id=f"u{i}") for i in range(2)]
    ).case_ids
    assert service.get_case(first).group_id is None
    assert service.get_case(later[1]).group_id == later[0]


# ------------------------------------------------------------------ case lists


def test_a_list_of_empty_items_is_answered_at_once_not_after_minutes(tmp_path: Path) -> None:
    """`/care dismiss 1 , , , , …`: the list splitter backtracked exponentially (70
    characters took minutes), so anyone who can type the command could stall the bot."""
    from bot.commands import run_command
    from tests.conftest import STRANGER

    service = _service(tmp_path)
    started = time.monotonic()
    answer = run_command(service, STRANGER, "dismiss 1,2" + " ,   " * 40 + ",")
    assert time.monotonic() - started < 2
    assert not answer.ok and "cannot end with a comma" in answer.text


def test_the_list_splitter_still_splits_as_it_did() -> None:
    """Same answers as the old pattern on every short string of these characters."""
    import itertools
    import re

    from bot.caselist import split_refs

    old = re.compile(r"\s*((?:[^\s,]*\s*,\s*)*[^\s,]+)")

    def before(rest: str) -> tuple[str, str]:
        match = old.match(rest)
        return (
            ("", rest.strip()) if match is None else (match.group(1), rest[match.end() :].strip())
        )

    for size in range(7):
        for chars in itertools.product("1, x", repeat=size):
            text = "".join(chars)
            assert split_refs(text) == before(text), text
    for text in ["12, 14,20-25 spam wave", "#12, #14, #20-#25 x", "1,2,", "1, a b, 3", "\t5 ,6  y"]:
        assert split_refs(text) == before(text), text


def test_a_long_conversation_is_cut_before_it_reaches_the_llm(tmp_path: Path) -> None:
    """The per-mention cap covers what is sent too: a post is kept up to 10,000
    characters and a conversation gathers its follow-ups, so one call could carry
    ~15,000 prompt tokens. The start (the complaint) and the end (the latest) stay."""
    from bot.ai import MAX_PROMPT_TEXT_CHARS
    from tests.fakes.openai import start_fake_openai
    from tests.test_ai import good_answer, make
    from tests.test_llm_combined import drain

    opening = "@AcmeAir my bag was lost on flight 12, I want a refund."
    ending = "Please answer, my email is maya@example.com"
    first = mention(opening + " Still nothing." * 600, id="t1", conversation_id="t1")
    follow_ups = [
        mention(
            "@AcmeAir still waiting." * 400 + (ending if n == 4 else ""),
            id=f"t{n + 2}",
            conversation_id="t1",
            in_reply_to_id="t1",
        )
        for n in range(5)
    ]
    with start_fake_openai() as fake:
        fake.set_responder(lambda body: json.dumps(good_answer()))
        service, ai, _ = make(tmp_path, fake)
        stats = service.ingest_many([first, *follow_ups])
        assert (stats.created, stats.joined) == (1, 5)
        [outcome] = drain(ai)
        assert outcome["reading"] is True
        [body] = fake.requests
        user = body["messages"][-1]["content"]
        assert len(user) < MAX_PROMPT_TEXT_CHARS + 1000
        assert opening in user and "Please answer, my email is [email]" in user
        assert "maya@example.com" not in user


def test_a_vip_handle_can_name_its_network_so_a_namesake_elsewhere_is_no_vip(
    tmp_path: Path,
) -> None:
    """Usernames are per network: anyone may register "bigjournalist" on Instagram. A
    handle written `x:bigjournalist` is a VIP on X only; a bare one still counts anywhere."""
    service = _service(tmp_path, vip={"handles": ["x:@BigJournalist", "anywhere"]})
    assert service.config.vip.handles == ["x:bigjournalist", "anywhere"]

    def priority(network: str, handle: str) -> str:
        case_id = service.ingest(
            mention(
                COMPLAINT, network=network, author_id=f"{network}-{handle}", author_handle=handle
            )
        ).case_ids[0]
        return service.get_case(case_id).priority.value

    assert priority("x", "BigJournalist") == "high"
    assert priority("instagram", "bigjournalist") == "normal"
    assert priority("instagram", "anywhere") == "high"
    with pytest.raises(ConfigError) as raised:
        parse_config(config_data(vip={"handles": ["myspace:tom"]}))
    assert "myspace" in raised.value.problems[0]


@pytest.mark.parametrize(
    ("name", "first"),
    [
        ("प्रिया शर्मा", "प्रिया"),  # Devanagari: vowel signs are combining marks
        ("ศิริพร ใจดี", "ศิริพร"),  # Thai
        ("Jose\u0301 Garci\u0301a", "José"),  # a decomposed accent
        ("Maya López", "Maya"),
    ],
)
def test_first_name_keeps_the_marks_that_spell_a_name(name: str, first: str) -> None:
    """A public "Hi प," for Priya: the name was cut at its first combining mark."""
    from bot.desk import first_name

    assert first_name(name) == first


def test_dismiss_all_similar_dismisses_what_the_button_counted_not_a_copy_with_its_own_card(
    tmp_path: Path,
) -> None:
    """A copy someone claimed has its own card; released as a stale claim it is `new`
    again, but no longer on the group's card. The button said 3: dismiss those 3."""
    from bot.actions import perform_answered
    from bot.bulk import untouched
    from bot.stale import StaleClaims
    from tests.conftest import AGENT, AGENT2

    service = _service(tmp_path)
    clock = service.clock
    assert isinstance(clock, FixedClock)
    leader, taken, *rest = service.ingest_many(
        [mention(CAMPAIGN, author_id=f"b{i}", author_handle=f"fan{i}") for i in range(4)]
    ).case_ids
    service.claim(AGENT2, taken)
    for _ in range(2):
        clock.advance(30 * 60)
        StaleClaims(service).check(clock.now())
    assert service.get_case(taken).state.value == "new"  # released, on its own card
    counted = untouched(service.view(leader))
    assert counted == [leader, *rest]
    _, summary = perform_answered(
        service, AGENT, "dismiss_group", {"case": leader, "reason": "campaign"}
    )
    assert summary == (
        f"Dismissed 3 similar cases: #{leader}, #{rest[0]}, #{rest[1]}. Reason: campaign."
        f" Left alone 1: #{taken} (back in the queue on its own card)."
    )
    assert service.get_case(taken).state.value == "new"


# ------------------------------------------------------------------ Slack


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    """The Slack end-to-end harness of tests/test_slack.py (real Bolt, fake Slack)."""
    yield from slack_harness.__wrapped__(tmp_path)  # type: ignore[attr-defined]


def test_the_claim_next_buttons_answer_shows_the_post_as_text_not_as_slack_markup(
    harness: Harness,
) -> None:
    """The answer quotes the customer's post: its `<https://…|label>` must not become a
    disguised link in a message from the bot (nor `<!channel>` a mention). The typed
    `/care next` answer was escaped already; the button's was posted raw."""
    post = "@AcmeAir refund me <https://evil.example|Verify your Slack session> <!channel>"
    case_id = harness.ingest(post, author_id="q1", author_handle="q1")
    assert harness.click("U0AGENT1", "claim_next", "next") == 200
    wait_until(lambda: len(harness.ephemerals()) == 1)
    [shown] = harness.ephemerals()
    assert shown.startswith(f"You claimed case #{case_id} (")
    assert "<https://evil.example|" not in shown and "<!channel>" not in shown
    assert "&lt;https://evil.example|Verify your Slack session&gt;" in shown

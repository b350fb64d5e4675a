"""Bulk actions, lists and ranges, `/care next` and stale claims (issue 14).

Store-touching tests run on SQLite and on a real PostgreSQL server (the `svc` fixture);
the Slack ones go through the real Bolt app against the fake Slack; the demo through
the console surface.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from bot.actions import perform, perform_answered
from bot.bulk import untouched
from bot.caselist import (
    MAX_CASES,
    compact,
    is_case_list,
    parse_case_list,
    split_refs,
    typeable,
)
from bot.commands import run_command
from bot.config import Config, parse_config
from bot.delivery import ChatWorker
from bot.errors import Refusal
from bot.followup import FollowUp
from bot.models import Actor, CaseState
from bot.ports import FixedClock
from bot.service import CareService
from bot.stale import StaleClaims
from bot.storage import open_store
from bot.store import Store
from handlers.console import ConsoleSurface, run_line
from handlers.teams_cards import case_card as teams_case_card
from handlers.teams_cards import queue_answer_card
from tests.conftest import AGENT, AGENT2, LEAD, MKT, START, STRANGER, config_data, mention
from tests.pg import postgres_server_fixture, postgres_url_fixture  # noqa: F401
from tests.test_slack import Harness, wait_until
from tests.test_slack import harness as slack_harness

CAMPAIGN = "@AcmeAir Bring back the free snacks! #SnackGate https://t.co/abc"
COMPLAINT = "@AcmeAir my flight was delayed 3 hours, I want a refund"
PRAISE = "Thank you @AcmeAir, the crew were wonderful!"


# ------------------------------------------------------------------ both engines


@pytest.fixture(params=["sqlite", "postgres"])
def svc(request: pytest.FixtureRequest, tmp_path: Path, clock: FixedClock) -> Iterator[CareService]:
    data = config_data()
    if request.param == "postgres":
        data["bot"]["database"] = request.getfixturevalue("postgres_url")
    config = parse_config(data, base_dir=tmp_path)
    store = open_store(config.database_target(env={}))
    try:
        yield CareService(config, store, clock=clock)
    finally:
        store.close()


def add(service: CareService, text: str = COMPLAINT, **fields: Any) -> int:
    n = service.store.scalar("SELECT count(*) FROM mentions") or 0
    fields.setdefault("author_id", f"a{n}")
    fields.setdefault("author_handle", f"person{n}")
    return service.ingest(mention(text, **fields)).case_ids[0]


def burst(service: CareService, n: int) -> list[int]:
    batch = [mention(CAMPAIGN, author_id=f"b{i}", author_handle=f"fan{i}") for i in range(n)]
    return service.ingest_many(batch).case_ids


def audit_rows(service: CareService, action: str) -> list[dict[str, Any]]:
    return service.store.query("SELECT * FROM audit WHERE action = ? ORDER BY seq", [action])


def state(service: CareService, case_id: int) -> CaseState:
    return service.get_case(case_id).state


# ------------------------------------------------------------------ parsing


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12,14,20-25", [12, 14, 20, 21, 22, 23, 24, 25]),
        ("#12, #14, #20-#25", [12, 14, 20, 21, 22, 23, 24, 25]),
        ("7 , 3,7,3-4", [7, 3, 4]),  # given order, each case once
        ("5-5", [5]),
        ("1-100", list(range(1, 101))),
    ],
)
def test_lists_and_ranges_name_each_case_once_in_order(text: str, expected: list[int]) -> None:
    assert parse_case_list(text) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("25-20", "The range 25-20 runs backwards; write it low to high: 20-25."),
        ("12,abc", "'abc' is not a case number or range"),
        ("12,,14", "an empty item is not a case number"),
        ("12-14-16", "'12-14-16' is not a case number or range"),
        ("1-101", f"more than {MAX_CASES} cases"),
        ("1-60,100-160", f"more than {MAX_CASES} cases"),
        ("1-999999999", f"more than {MAX_CASES} cases"),
        ("0-3", "There is no case #0"),
    ],
)
def test_a_bad_list_is_a_usage_error_naming_the_problem(text: str, says: str) -> None:
    with pytest.raises(Refusal) as refused:
        parse_case_list(text)
    assert refused.value.code == "usage"
    assert says in str(refused.value)


@pytest.mark.parametrize(
    ("rest", "refs", "remainder"),
    [
        ("12,14,20-25 spam wave", "12,14,20-25", "spam wave"),
        ("12, 14, #20-#25  spam, again", "12, 14, #20-#25", "spam, again"),
        ("12 3 times asked", "12", "3 times asked"),
        ("12", "12", ""),
    ],
)
def test_the_case_list_is_split_from_the_reason(rest: str, refs: str, remainder: str) -> None:
    assert split_refs(rest) == (refs, remainder)


def test_single_references_are_not_lists_and_summaries_compact_runs() -> None:
    assert not is_case_list("12") and not is_case_list("#12")
    assert is_case_list("12,14") and is_case_list("20-25") and is_case_list("#20-#25")
    assert compact([23, 12, 20, 21, 22, 14]) == "#12, #14, #20–#23"
    assert compact([1, 2, 4]) == "#1, #2, #4"
    assert typeable([23, 12, 20, 21, 22, 14]) == "12,14,20-23"
    assert parse_case_list(typeable([23, 12, 20, 21, 22, 14])) == [12, 14, 20, 21, 22, 23]


# ------------------------------------------------------------------ lists in commands


def test_dismiss_a_list_with_allowed_and_refused_cases_gives_one_summary(
    svc: CareService,
) -> None:
    """`/care dismiss 12,14,20-25 REASON`: each case on its own merits, one answer."""
    care = [add(svc) for _ in range(6)]
    praise = [add(svc, PRAISE) for _ in range(2)]  # Marketing's
    assert {svc.get_case(c).department for c in praise} == {"marketing"}
    closed = add(svc)
    svc.dismiss(AGENT, closed, "duplicate")
    claimed = add(svc)
    svc.reply(AGENT2, claimed, "Sorry about the delay! Please DM us your booking reference.")
    svc.approve(LEAD, claimed)  # being published: too late to dismiss
    ids = [*care, *praise, closed, claimed]
    refs = f"{care[0]},{care[1]}, {care[2]}-{care[5]},#{praise[0]},{praise[1]},{closed},{claimed}"
    answer = run_command(svc, AGENT, f"dismiss {refs} spam wave")
    assert answer.ok
    assert answer.text == (
        f"Dismissed 6 cases: {compact(care)}. Reason: spam wave."
        f" Refused 4: {compact(praise)} are in Marketing (not your department),"
        f" #{closed} is already closed, #{claimed} is approved and being published."
    )
    assert all(state(svc, c) is CaseState.DISMISSED for c in care)
    assert [state(svc, c) for c in praise] == [CaseState.NEW, CaseState.NEW]
    assert state(svc, claimed) is CaseState.APPROVED
    # Audited one by one: six dismissals and four refusals, each naming its case.
    entries = [e for e in audit_rows(svc, "dismiss") if e["case_id"] in ids[:-2] + [claimed]]
    done = [e["case_id"] for e in entries if e["outcome"] == "ok"]
    refused = {e["case_id"]: e["outcome"] for e in entries if e["outcome"] != "ok"}
    assert done == care
    assert refused == {
        praise[0]: "refused:not_allowed",
        praise[1]: "refused:not_allowed",
        claimed: "refused:wrong_state",
    }
    again = [e for e in audit_rows(svc, "dismiss") if e["case_id"] == closed]
    assert [e["outcome"] for e in again] == ["ok", "refused:wrong_state"]


def test_claim_a_list_and_a_manager_rejects_a_list(svc: CareService) -> None:
    a, b, c = add(svc), add(svc), add(svc)
    assert run_command(svc, AGENT, f"claim {a},{b}").text == f"Claimed 2 cases: #{a}, #{b}."
    assert run_command(svc, AGENT2, f"claim {a}-{c}").text == (
        f"Claimed 1 case: #{c}. Refused 2: #{a}, #{b} are claimed by <@U0AGENT1>."
    )
    for case_id in (a, b):
        svc.reply(AGENT, case_id, "Sorry about the delay! Please DM us your booking reference.")
    answer = run_command(svc, AGENT, f"reject {a},{b} tone")
    assert not answer.ok and answer.text.startswith("Rejected no cases. Refused 2:")
    answer = run_command(svc, LEAD, f"reject #{a},#{b} please add an apology")
    assert answer.text == f"Rejected 2 cases: #{a}, #{b}. Reason: please add an apology."
    assert svc.get_case(a).note == "please add an apology"


def test_dismissing_a_group_leader_in_a_list_counts_its_copies_as_done(svc: CareService) -> None:
    leader, *copies = burst(svc, 3)
    answer = run_command(svc, AGENT, f"dismiss {leader}-{copies[-1]} campaign")
    assert answer.text == f"Dismissed 3 cases: {compact([leader, *copies])}. Reason: campaign."


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("approve 3,4", "`approve` takes one case at a time: an approval is bound to the exact"),
        ("reply 3-4 hello", "`reply` takes one case at a time: a reply is written to one person"),
        ("dismiss 25-20 spam", "runs backwards"),
        ("claim 1,2,", "cannot end with a comma"),
        ("claim 1-500", "more than 100 cases"),
    ],
)
def test_lists_where_they_make_no_sense_are_refused_audited_and_change_nothing(
    svc: CareService, line: str, says: str
) -> None:
    add(svc), add(svc)
    before = svc.store.query("SELECT id, state, claimed_by FROM cases ORDER BY id")
    answer = run_command(svc, AGENT, line)
    assert not answer.ok and says in answer.text
    assert svc.store.query("SELECT id, state, claimed_by FROM cases ORDER BY id") == before
    entry = svc.store.one("SELECT * FROM audit ORDER BY seq DESC LIMIT 1")
    assert entry is not None
    assert entry["action"] == line.split()[0] and entry["outcome"] == "refused:usage"
    assert json.loads(entry["detail"])["reason"] == answer.text


def test_a_list_without_a_reason_is_a_usage_error(svc: CareService) -> None:
    a, b = add(svc), add(svc)
    answer = run_command(svc, AGENT, f"dismiss {a},{b}")
    assert not answer.ok and answer.text == "Usage: /care dismiss N,N,N-M REASON"
    assert state(svc, a) is CaseState.NEW


def test_single_case_answers_are_unchanged(svc: CareService) -> None:
    case_id = add(svc)
    assert run_command(svc, AGENT, f"claim #{case_id}").text == f"You claimed case #{case_id}."
    assert run_command(svc, AGENT, f"dismiss {case_id} not for us").text == (
        f"Case #{case_id} dismissed: not for us"
    )


# ------------------------------------------------------------------ dismiss all similar


def test_dismiss_all_similar_on_a_five_copy_group_is_one_action_with_five_audit_entries(
    svc: CareService,
) -> None:
    ids = burst(svc, 5)
    view = svc.view(ids[0])
    assert untouched(view) == ids
    before = len(svc.store.query("SELECT seq FROM audit"))
    case, summary = perform_answered(
        svc, AGENT, "dismiss_group", {"case": ids[0], "reason": "snack campaign"}
    )
    assert case is not None and case.id == ids[0]
    assert summary == f"Dismissed 5 similar cases: {compact(ids)}. Reason: snack campaign."
    assert all(state(svc, i) is CaseState.DISMISSED for i in ids)
    entries = svc.store.query("SELECT * FROM audit ORDER BY seq")[before:]
    assert [(e["action"], e["case_id"], e["outcome"]) for e in entries] == [
        ("dismiss", i, "ok") for i in ids
    ]
    assert {json.loads(e["detail"])["group"] for e in entries} == {ids[0]}
    notes = svc.store.query("SELECT payload FROM outbox WHERE kind = 'note' ORDER BY id")
    assert json.loads(notes[-1]["payload"])["text"] == f"<@U0AGENT1>: {summary}"
    assert untouched(svc.view(ids[0])) == []


def test_dismiss_all_similar_leaves_claimed_and_drafted_copies_alone_and_names_them(
    svc: CareService,
) -> None:
    leader, taken, drafted, *rest = burst(svc, 5)
    svc.claim(AGENT2, taken)  # leaves the group for its own card
    svc.set_draft(AGENT, drafted, "Thanks, we hear you about the snacks!")
    svc.claim(LEAD, leader)  # the card's own case is taken up too
    assert untouched(svc.view(leader)) == rest
    _, summary = perform_answered(svc, AGENT, "dismiss_group", {"case": leader, "reason": "spam"})
    assert summary == (
        f"Dismissed 2 similar cases: {compact(rest)}. Reason: spam."
        f" Left alone 3: #{leader} (claimed by <@U0LEAD>), #{taken} (claimed by <@U0AGENT2>),"
        f" #{drafted} (claimed by <@U0AGENT1>, drafted)."
    )
    assert [state(svc, i) for i in (leader, taken, drafted)] == [CaseState.CLAIMED] * 3
    assert all(state(svc, i) is CaseState.DISMISSED for i in rest)


def test_dismiss_all_similar_is_refused_for_another_department_and_without_a_reason(
    svc: CareService,
) -> None:
    ids = burst(svc, 3)
    for actor, reason, code in ((MKT, "spam", "not_allowed"), (AGENT, "  ", "no_reason")):
        with pytest.raises(Refusal) as refused:
            perform(svc, actor, "dismiss_group", {"case": ids[0], "reason": reason})
        assert refused.value.code == code
        last = svc.store.one("SELECT * FROM audit ORDER BY seq DESC LIMIT 1")
        assert last is not None and last["outcome"] == f"refused:{code}"
    assert all(state(svc, i) is CaseState.NEW for i in ids)


# ------------------------------------------------------------------ /care next


def _set(svc: CareService, case_id: int, **columns: Any) -> None:
    sets = ", ".join(f"{k} = ?" for k in columns)
    with svc.store.write() as db:
        db.execute(f"UPDATE cases SET {sets} WHERE id = ?", [*columns.values(), case_id])


def test_next_claims_by_priority_then_due_time_then_age(svc: CareService) -> None:
    due = START + timedelta(hours=1)
    names = ["low", "normal_late", "normal_early", "normal_old", "urgent", "high", "high_no_due"]
    cases = {name: add(svc) for name in [*names, "other_dept"]}
    _set(svc, cases["low"], priority="low")
    _set(
        svc,
        cases["normal_late"],
        priority="normal",
        sla_due_at=(due + timedelta(hours=2)).isoformat(),
    )
    _set(svc, cases["normal_early"], priority="normal", sla_due_at=due.isoformat(),
         mention_at=START.isoformat())  # fmt: skip
    _set(svc, cases["normal_old"], priority="normal", sla_due_at=due.isoformat(),
         mention_at=(START - timedelta(hours=3)).isoformat())  # fmt: skip
    _set(svc, cases["urgent"], priority="urgent", sla_due_at=(due + timedelta(days=1)).isoformat())
    _set(svc, cases["high"], priority="high", sla_due_at=due.isoformat())
    _set(svc, cases["high_no_due"], priority="high", sla_due_at=None)
    _set(svc, cases["other_dept"], priority="urgent", department="marketing")
    order = ["urgent", "high", "high_no_due", "normal_old", "normal_early", "normal_late", "low"]
    claimed = []
    for _ in order:
        answer = run_command(svc, AGENT, "next")
        assert answer.ok and answer.text.startswith(f"You claimed case #{answer.case_id} (")
        claimed.append(answer.case_id)
    assert claimed == [cases[name] for name in order]
    assert svc.get_case(cases["urgent"]).claimed_by == "U0AGENT1"
    answer = run_command(svc, AGENT, "next")
    assert answer.text == "Nothing waiting: no unclaimed open case in Customer Care."
    assert answer.case_id is None
    assert state(svc, cases["other_dept"]) is CaseState.NEW
    assert len([e for e in audit_rows(svc, "claim") if e["outcome"] == "ok"]) == len(order)


def test_next_is_refused_for_someone_with_no_department(svc: CareService) -> None:
    add(svc)
    answer = run_command(svc, STRANGER, "next")
    assert not answer.ok and "Only members and managers" in answer.text
    assert audit_rows(svc, "next")[-1]["outcome"] == "refused:not_allowed"


def test_two_people_pressing_next_at_once_get_different_cases(svc: CareService) -> None:
    ids = [add(svc) for _ in range(2)]
    start = threading.Barrier(2)
    got: dict[str, int | None] = {}

    def press(actor: Actor) -> None:
        start.wait()
        got[actor.user_id] = run_command(svc, actor, "next").case_id

    threads = [threading.Thread(target=press, args=(a,)) for a in (AGENT, AGENT2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert sorted(v for v in got.values() if v is not None) == ids
    for user, case_id in got.items():
        assert case_id is not None and svc.get_case(case_id).claimed_by == user


# ------------------------------------------------------------------ stale claims


def notices(svc: CareService) -> list[tuple[str, str]]:
    rows = svc.store.query("SELECT channel, payload FROM outbox WHERE kind = 'notify' ORDER BY id")
    return [(r["channel"], json.loads(r["payload"])["text"]) for r in rows]


def test_a_stale_claim_reminds_then_releases_with_the_sla_unchanged(
    svc: CareService, clock: FixedClock
) -> None:
    case_id = add(svc)
    due = svc.get_case(case_id).sla_due_at
    svc.claim(AGENT, case_id)
    stale = StaleClaims(svc)
    clock.advance(29 * 60)
    assert stale.check(clock.now()) == {"reminder": 0, "release": 0}
    clock.advance(60)
    assert stale.check(clock.now()) == {"reminder": 1, "release": 0}
    assert stale.check(clock.now()) == {"reminder": 0, "release": 0}  # once
    assert notices(svc) == [
        (
            "user:U0AGENT1",
            f"Reminder: you claimed case #{case_id} 30 minutes ago and it has no draft yet."
            " Write one, or it goes back to the queue at 10:00.",
        )
    ]
    clock.advance(29 * 60)
    assert StaleClaims(svc).check(clock.now()) == {"reminder": 0, "release": 0}
    clock.advance(60)
    restarted = FollowUp(CareService(svc.config, svc.store, clock=clock))
    assert restarted.tick(clock.now(), owner="p1")["stale_claims"] == {"reminder": 0, "release": 1}
    assert restarted.tick(clock.now(), owner="p1")["stale_claims"] == {"reminder": 0, "release": 0}
    case = svc.get_case(case_id)
    assert case.state is CaseState.NEW and case.claimed_by is None
    assert case.sla_due_at == due
    release = audit_rows(svc, "release")
    assert [(e["case_id"], e["actor"], e["outcome"]) for e in release] == [
        (case_id, "system:socialcare", "ok")
    ]
    assert json.loads(release[0]["detail"])["claimed_by"] == "U0AGENT1"
    rows = svc.store.query(
        "SELECT payload FROM outbox WHERE kind = 'note' AND case_id = ? ORDER BY id", [case_id]
    )
    notes = [json.loads(r["payload"])["text"] for r in rows]
    assert notes[-1] == (
        "Back in the queue: claimed by <@U0AGENT1> 60 minutes ago with no draft."
        " Anyone in the department can claim it now."
    )
    assert notices(svc)[-1] == (
        "user:U0AGENT1",
        f"Case #{case_id} went back to the queue: it had no draft 60 minutes after you claimed it.",
    )
    # A new claim starts a fresh cycle.
    svc.claim(AGENT2, case_id)
    clock.advance(30 * 60)
    assert stale.check(clock.now()) == {"reminder": 1, "release": 0}
    assert notices(svc)[-1][0] == "user:U0AGENT2"


def test_a_draft_ends_the_stale_claim_and_departments_set_their_own_time(
    tmp_path: Path, clock: FixedClock
) -> None:
    data = config_data()
    data["departments"][0]["stale_claim_minutes"] = 10
    config = parse_config(data, base_dir=tmp_path)
    store = Store(config.database_path)
    try:
        service = CareService(config, store, clock=clock)
        drafted, idle = add(service), add(service)
        service.claim(AGENT, drafted)
        service.claim(AGENT, idle)
        clock.advance(9 * 60)
        service.set_draft(AGENT, drafted, "Sorry! Please DM us your booking reference.")
        clock.advance(60)
        assert StaleClaims(service).check(clock.now()) == {"reminder": 1, "release": 0}
        assert [text for _, text in notices(service)] == [
            f"Reminder: you claimed case #{idle} 10 minutes ago and it has no draft yet."
            " Write one, or it goes back to the queue at 09:20."
        ]
        clock.advance(60 * 60)
        assert StaleClaims(service).check(clock.now()) == {"reminder": 0, "release": 1}
        assert service.get_case(drafted).state is CaseState.CLAIMED
        assert service.get_case(idle).state is CaseState.NEW
    finally:
        store.close()


def test_stale_claim_minutes_must_be_positive(tmp_path: Path) -> None:
    from bot.errors import ConfigError

    data = config_data()
    data["departments"][0]["stale_claim_minutes"] = 0
    with pytest.raises(ConfigError) as bad:
        parse_config(data, base_dir=tmp_path)
    assert "stale_claim_minutes" in str(bad.value)


# ------------------------------------------------------------------ Slack


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    """The Slack end-to-end harness of tests/test_slack.py (real Bolt, fake Slack)."""
    yield from slack_harness.__wrapped__(tmp_path)  # type: ignore[attr-defined]


def test_slack_dismiss_all_similar_button_modal_and_summary(harness: Harness) -> None:
    ids = burst(harness.service, 5)
    harness.deliver()
    card = harness.fake.calls_to("chat.postMessage")[0]
    buttons = [e for b in card["blocks"] if b["type"] == "actions" for e in b["elements"]]
    group = next(b for b in buttons if b["action_id"] == "dismiss_group")
    assert group["text"]["text"] == "Dismiss all 5 similar" and group["value"] == str(ids[0])

    assert harness.click("U0AGENT1", "dismiss_group", str(ids[0])) == 200
    modal = harness.fake.wait_for("views.open")[0]["view"]
    assert modal["callback_id"] == "dismiss_group_reason"
    # The confirmation covers the copies it counted: up to the newest one shown.
    assert modal["private_metadata"] == f"{ids[0]}:{ids[-1]}"
    assert all(harness.state(i) is CaseState.NEW for i in ids)  # nothing before the reason
    # While the person types the reason, the campaign goes on: a sixth copy arrives.
    [late] = burst(harness.service, 1)
    assert harness.service.get_case(late).group_id == ids[0]

    values = {"reason": {"reason_text": {"value": "snack campaign"}}}
    status, body = harness.submit_view(
        "U0AGENT1", "dismiss_group_reason", ids[0], values, metadata=modal["private_metadata"]
    )
    answer = json.loads(body)
    assert status == 200 and answer["response_action"] == "update"
    shown = json.dumps(answer["view"], ensure_ascii=False)
    assert f"Dismissed 5 similar cases: {compact(ids)}. Reason: snack campaign." in shown
    assert f"#{late} (came in after you confirmed)" in shown
    assert all(harness.state(i) is CaseState.DISMISSED for i in ids)
    assert harness.state(late) is CaseState.NEW, "nobody saw it: it waits on the card"
    entries = [e for e in audit_rows(harness.service, "dismiss") if e["outcome"] == "ok"]
    assert [e["case_id"] for e in entries] == ids
    harness.deliver()
    notes = [p["text"] for p in harness.fake.calls_to("chat.postMessage") if p.get("thread_ts")]
    assert notes[-1].startswith("<@U0AGENT1>: Dismissed 5 similar cases")
    update = harness.fake.calls_to("chat.update")[-1]
    # The card now offers only the copy nobody has seen yet.
    assert "Dismiss 1 similar" in json.dumps(update["blocks"])


def test_slack_dismiss_all_similar_by_another_department_shows_the_refusal_in_the_modal(
    harness: Harness,
) -> None:
    ids = burst(harness.service, 3)
    values = {"reason": {"reason_text": {"value": "spam"}}}
    status, body = harness.submit_view("U0MKT1", "dismiss_group_reason", ids[0], values)
    answer = json.loads(body)
    assert answer["response_action"] == "errors"
    assert "Only members of Customer Care" in answer["errors"]["reason"]
    assert all(harness.state(i) is CaseState.NEW for i in ids)


def test_slack_list_command_answers_once_on_the_ack(harness: Harness) -> None:
    care = [harness.ingest(author_id=f"c{i}", author_handle=f"c{i}") for i in range(3)]
    praise = harness.ingest(PRAISE, author_id="p", author_handle="p")
    answer = harness.ask("U0AGENT1", f"dismiss {care[0]}-{care[-1]},{praise} not for us")
    assert answer["response_type"] == "ephemeral"
    assert answer["text"] == (
        f"Dismissed 3 cases: {compact(care)}. Reason: not for us."
        f" Refused 1: #{praise} is in Marketing (not your department)."
    )
    assert harness.state(praise) is CaseState.NEW


def test_slack_queue_answer_offers_claim_next_which_claims_and_says_so(harness: Harness) -> None:
    first = harness.ingest(author_id="q1", author_handle="q1")
    harness.ingest(author_id="q2", author_handle="q2")
    answer = harness.ask("U0AGENT1", "queue")
    buttons = [e for b in answer["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [b["action_id"] for b in buttons] == ["claim_next"]
    assert harness.click("U0AGENT1", "claim_next", "next") == 200
    wait_until(lambda: harness.state(first) is CaseState.CLAIMED)
    wait_until(lambda: len(harness.ephemerals()) == 1)
    assert harness.ephemerals()[0].startswith(f"You claimed case #{first} (")
    assert harness.ask("U0AGENT1", "next")["text"].startswith("You claimed case #")
    assert harness.ask("U0AGENT1", "next")["text"] == (
        "Nothing waiting: no unclaimed open case in Customer Care."
    )
    assert "blocks" not in harness.ask("U0AGENT1", "queue")  # nothing left to offer


def test_slack_stale_claim_reminder_reaches_the_claimant_by_dm(harness: Harness) -> None:
    case_id = harness.ingest()
    harness.service.claim(Actor("U0AGENT1", team_id="T0ACME"), case_id)
    harness.clock.advance(30 * 60)
    FollowUp(harness.service).tick(harness.clock.now(), owner="test")
    harness.deliver()
    dms = [p for p in harness.fake.calls_to("chat.postMessage") if p["channel"] == "U0AGENT1"]
    assert len(dms) == 1 and dms[0]["text"].startswith(f"Reminder: you claimed case #{case_id}")
    harness.clock.advance(30 * 60)
    FollowUp(harness.service).tick(harness.clock.now(), owner="test")
    harness.deliver()
    assert harness.state(case_id) is CaseState.NEW
    notes = [p["text"] for p in harness.fake.calls_to("chat.postMessage") if p.get("thread_ts")]
    assert notes[-1].startswith("Back in the queue: claimed by <@U0AGENT1>")


# ------------------------------------------------------------------ Teams cards


def test_teams_grouped_card_offers_dismiss_all_similar_and_the_queue_claim_next(
    service: CareService,
) -> None:
    ids = burst(service, 4)
    card = teams_case_card(service.view(ids[0]), now=START)
    group = next(a for a in card["actions"] if a.get("id") == "dismiss_group")
    assert group["type"] == "Action.ShowCard" and group["title"] == "Dismiss all 4 similar"
    submit = group["card"]["actions"][0]
    assert (submit["verb"], submit["data"]) == ("dismiss_group", {"case": ids[0], "upto": ids[-1]})
    # Teams merges the card's inputs into the data: the reason field is `group_reason`.
    data = {**submit["data"], "group_reason": "snack campaign"}
    case, summary = perform_answered(service, AGENT, "dismiss_group", data)
    assert case is not None and summary.startswith("Dismissed 4 similar cases")
    after = teams_case_card(service.view(ids[0]), now=START, notice=summary)
    assert not any(a.get("id") == "dismiss_group" for a in after.get("actions", []))
    assert summary in json.dumps(after["body"][0], ensure_ascii=False)
    queue = queue_answer_card("Open cases: 2")
    assert queue["actions"][0]["verb"] == "claim_next"


# ------------------------------------------------------------------ console demo


def test_console_demo_takes_lists_ranges_and_next(service: CareService, config: Config) -> None:
    ids = [add(service) for _ in range(4)]
    console = Console(record=True, width=200)
    surface = ConsoleSurface(console, service.clock.now, names={"U0AGENT1": "Ana"})
    surface.answer(run_line(service, AGENT, f"/care claim {ids[0]},{ids[1]}"))
    surface.answer(run_line(service, AGENT, "/care next"))
    surface.answer(run_line(service, AGENT, f"/care dismiss {ids[0]}-{ids[3]} test traffic"))
    surface.answer(run_line(service, AGENT, f"/care approve {ids[0]},{ids[1]}"))
    out = console.export_text()
    assert f"Claimed 2 cases: #{ids[0]}, #{ids[1]}." in out
    assert f"You claimed case #{ids[2]} (" in out
    assert f"Dismissed 4 cases: #{ids[0]}–#{ids[3]}. Reason: test traffic." in out
    assert "(only you can see this) `approve` takes one case at a time" in out


def test_console_card_of_a_group_says_how_to_dismiss_all_similar(service: CareService) -> None:
    ids = burst(service, 4)
    console = Console(record=True, width=200)
    surface = ConsoleSurface(console, service.clock.now)
    ChatWorker(service, surface).drain()
    out = console.export_text()
    assert f"Dismiss all 4 similar: /care dismiss {ids[0]}-{ids[-1]} REASON" in out
    answer = run_line(service, AGENT, f"/care dismiss {ids[0]}-{ids[-1]} snack campaign")
    assert answer.text == f"Dismissed 4 cases: {compact(ids)}. Reason: snack campaign."


# ------------------------------------------------------------------ Teams end to end


@pytest.fixture
def teams(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The Teams harness of tests/test_teams.py (Agents SDK against the fake connector)."""
    from tests.test_teams import teams as teams_harness

    yield from teams_harness.__wrapped__(tmp_path, monkeypatch)  # type: ignore[attr-defined]


def test_teams_dismiss_all_similar_and_a_stale_claim_reminder_in_the_1_1_chat(
    teams: Any,
) -> None:
    from tests.fakes.teams import CHANNEL_ID, USER_ID, press
    from tests.test_teams import MEMBER

    ids = burst(teams.service, 3)
    teams.deliver()
    status, answer = teams.press("dismiss_group", MEMBER, inputs={"group_reason": "snacks"})
    assert status == 200
    shown = json.dumps(answer["value"], ensure_ascii=False)
    assert f"Dismissed 3 similar cases: {compact(ids)}. Reason: snacks." in shown
    assert all(state(teams.service, i) is CaseState.DISMISSED for i in ids)
    entries = [e for e in audit_rows(teams.service, "dismiss") if e["outcome"] == "ok"]
    assert [e["case_id"] for e in entries] == ids

    case_id = add(teams.service)
    teams.deliver()
    message = next(
        m for m in teams.connector.card_messages(CHANNEL_ID) if f"#{case_id}" in json.dumps(m.card)
    )

    assert teams.post(press(message, "claim", service_url=teams.url, **MEMBER))[0] == 200
    clock = teams.runtime.clock
    clock.advance(30 * 60)
    FollowUp(teams.service).tick(clock.now(), owner="test")
    teams.deliver()
    [reminder] = teams.connector.personal_messages(USER_ID)
    assert f"Reminder: you claimed case #{case_id} 30 minutes ago" in json.dumps(reminder.card)

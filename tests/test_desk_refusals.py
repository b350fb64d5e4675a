"""The care desk's refusals, on SQLite and on a real PostgreSQL server: the person is told
why, nothing changes (cases, drafts, tags, the outbox), and the refusal is audited with
who, what, which case and the reason shown. Plus tags at ingest and by hand on PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot import desk_service
from bot.config import Config, parse_config
from bot.errors import Refusal
from bot.models import Actor
from bot.ports import FixedClock
from bot.service import CareService
from bot.storage import open_store
from bot.store import Store
from tests.conftest import AGENT, MKT, START, STRANGER, mention
from tests.pg import postgres_server_fixture, postgres_url_fixture  # noqa: F401
from tests.test_desk import desk_data

TABLES = ("cases", "drafts", "approvals", "outbox", "case_tags")


def new_case(service: CareService) -> int:
    return service.ingest(mention()).case_ids[0]  # tagged late, refund at ingest


@dataclass(frozen=True)
class Refused:
    name: str
    act: Callable[[CareService, int], object]
    actor: Actor
    action: str
    code: str
    says: str


CASES = [
    Refused("unknown saved reply", lambda s, c: desk_service.reply_with_saved(s, AGENT, c, "nope"),
            AGENT, "draft", "unknown_saved_reply", "There is no saved reply :nope"),
    Refused("saved reply over the network limit",
            lambda s, c: desk_service.use_saved_reply(s, AGENT, c, "long"),
            AGENT, "draft", "bad_reply", "over the limit of 280"),
    Refused("saved reply of another department",
            lambda s, c: desk_service.use_saved_reply(s, AGENT, c, "mkt"),
            AGENT, "draft", "not_for_department", "not for care cases"),
    Refused("saved reply by someone of another department",
            lambda s, c: desk_service.use_saved_reply(s, MKT, c, "thanks"),
            MKT, "draft", "not_allowed", "Only members of Customer Care"),
    Refused("malformed tag", lambda s, c: desk_service.tag_command(s, AGENT, c, ["+Bad_Tag"]),
            AGENT, "tag", "bad_tag", "a tag is lower-case"),
    Refused("tags already there", lambda s, c: desk_service.tag_command(s, AGENT, c, ["+late"]),
            AGENT, "tag", "no_change", "are already so"),
    Refused("tag by a stranger", lambda s, c: desk_service.tag_command(s, STRANGER, c, ["+x"]),
            STRANGER, "tag", "not_allowed", "Only members of Customer Care can tag"),
]  # fmt: skip


def check_refusal(case: Refused, service: CareService) -> None:
    case_id = new_case(service)

    def snapshot() -> list[object]:
        return [service.store.query(f"SELECT * FROM {t} ORDER BY 1, 2") for t in TABLES]

    before = snapshot()
    with pytest.raises(Refusal) as refused:
        case.act(service, case_id)
    assert refused.value.code == case.code
    assert case.says in str(refused.value)
    assert snapshot() == before, "a refusal must change nothing"
    entry = service.store.one("SELECT * FROM audit ORDER BY seq DESC LIMIT 1")
    assert entry is not None
    assert entry["actor"] == f"slack:{case.actor.user_id}"
    assert (entry["action"], entry["outcome"]) == (case.action, f"refused:{case.code}")
    assert entry["case_id"] == case_id
    assert json.loads(entry["detail"])["reason"] == str(refused.value)


@pytest.fixture
def desk_service_sqlite(tmp_path: Path) -> Iterator[CareService]:
    config = parse_config(desk_data(), base_dir=tmp_path)
    store = Store(config.database_path)
    yield CareService(config, store, clock=FixedClock(START))
    store.close()


@pytest.fixture
def pg_config(tmp_path: Path, postgres_url: str) -> Config:
    data = desk_data()
    data["bot"]["database"] = postgres_url
    return parse_config(data, base_dir=tmp_path)


@pytest.fixture
def pg_service(pg_config: Config) -> Iterator[CareService]:
    store = open_store(pg_config.database_target(env={}))
    yield CareService(pg_config, store, clock=FixedClock(START))
    store.close()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_desk_refusal(case: Refused, desk_service_sqlite: CareService) -> None:
    check_refusal(case, desk_service_sqlite)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_desk_refusal_on_postgres(case: Refused, pg_service: CareService) -> None:
    check_refusal(case, pg_service)


def test_tags_saved_replies_and_reports_on_postgres(pg_service: CareService) -> None:
    from bot import desk
    from bot.reports import kpis, tags_in_period

    case_id = new_case(pg_service)
    assert pg_service.view(case_id).tags == ["late", "refund"]
    change = desk_service.tag_command(pg_service, AGENT, case_id, ["+lost-bag", "-late"])
    assert (change.added, change.removed) == (["lost-bag"], ["late"])
    case = desk_service.reply_with_saved(pg_service, AGENT, case_id, "thanks")
    assert case.draft_text == "@maya Thanks Maya! Acme Air"
    assert desk.top_tags(pg_service.store, [case_id]) == [("lost-bag", 1), ("refund", 1)]
    until = START.replace(hour=23)
    assert tags_in_period(pg_service.store, since=START, until=until) == ["lost-bag", "refund"]
    assert kpis(pg_service.store, since=START, until=until, tag="refund").received == 1

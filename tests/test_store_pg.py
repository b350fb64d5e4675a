"""The PostgreSQL store on a real server: the same use cases, refusals and audit chain as
SQLite, and several processes on one database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot import audit
from bot.config import Config, parse_config
from bot.delivery import DryRunPublisher, PublishWorker
from bot.errors import Refusal
from bot.models import CaseState
from bot.ports import FixedClock
from bot.service import CareService
from bot.storage import open_store
from bot.store import Store
from tests.conftest import AGENT, LEAD, START, config_data, new_case
from tests.pg import postgres_server_fixture, postgres_url_fixture  # noqa: F401
from tests.test_refusals import CASES
from tests.test_refusals import (
    test_each_refusal_says_why_changes_nothing_and_is_audited as refusal_check,
)
from tests.test_workflow import ACTIONS, EXPECTED
from tests.test_workflow import test_every_action_in_every_state as action_check

REPLY = "Sorry about the delay! Please DM us your booking reference."


@pytest.fixture
def pg_config(tmp_path: Path, postgres_url: str) -> Config:
    data = config_data()
    data["bot"]["database"] = postgres_url
    return parse_config(data, base_dir=tmp_path)


@pytest.fixture
def pg_store(pg_config: Config) -> Iterator[Store]:
    store = open_store(pg_config.database_target(env={}))
    yield store
    store.close()


@pytest.fixture
def pg_service(pg_config: Config, pg_store: Store) -> CareService:
    return CareService(pg_config, pg_store, clock=FixedClock(START))


def test_the_schema_is_migrated_once_and_a_second_process_finds_it(
    pg_config: Config, pg_store: Store
) -> None:
    names = [r["name"] for r in pg_store.query("SELECT name FROM _socialcare_migrations")]
    from bot.store import migrations

    assert names == [m.name for m in migrations._migrations]
    second = open_store(pg_config.database_target(env={}))
    try:
        assert second.scalar("SELECT count(*) FROM _socialcare_migrations") == len(names)
    finally:
        second.close()


def test_a_case_goes_from_mention_to_published_reply_with_an_intact_audit_chain(
    pg_service: CareService, pg_store: Store
) -> None:
    case_id = new_case(pg_service)
    pg_service.reply(AGENT, case_id, REPLY)
    with pytest.raises(Refusal):
        pg_service.approve(AGENT, case_id)
    pg_service.approve(LEAD, case_id)
    worker = PublishWorker(pg_service, DryRunPublisher(pg_store, pg_service.clock))
    assert worker.drain() == 1
    case = pg_service.get_case(case_id)
    assert case.state is CaseState.PUBLISHED and case.published_url
    result = audit.verify(pg_store.db)
    assert result.ok and result.entries >= 6
    with pytest.raises(Exception, match="append-only"), pg_store.write() as db:
        db.execute("UPDATE audit SET actor = 'someone' WHERE seq = 1")


@pytest.fixture
def pg_publisher(pg_service: CareService, pg_store: Store) -> PublishWorker:
    return PublishWorker(pg_service, DryRunPublisher(pg_store, pg_service.clock))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_refusal_on_postgres(
    case: object, pg_service: CareService, pg_publisher: PublishWorker
) -> None:
    refusal_check(case, pg_service, pg_publisher)  # type: ignore[arg-type]


@pytest.mark.parametrize("state", list(EXPECTED))
@pytest.mark.parametrize("action", list(ACTIONS))
def test_every_action_in_every_state_on_postgres(
    state: CaseState, action: str, pg_service: CareService, pg_publisher: PublishWorker
) -> None:
    action_check(state, action, pg_service, pg_publisher)


def test_an_llm_reading_is_stored_on_postgres(pg_service: CareService) -> None:
    """The reading update once used SQLite's two-argument max(), which PostgreSQL lacks."""
    import json

    from bot.ai import AIEnricher
    from integrations.openai_llm import OpenAILLM
    from tests.fakes.openai import start_fake_openai
    from tests.test_ai import good_answer

    with start_fake_openai() as fake:
        fake.set_responder(lambda body: json.dumps(good_answer()))
        client = OpenAILLM(
            api_key="test-key-not-real", model="m", base_url=fake.base_url, max_retries=0
        )
        pg_service.ai_enabled = True
        case_id = new_case(pg_service)
        assert AIEnricher(pg_service, client).enrich(case_id).get("reading") is not None
    case = pg_service.get_case(case_id)
    assert str(case.extra["classifier"]).startswith("llm:")
    assert pg_service.view(case_id).suggestions


def test_publish_attempt_keys_differ_between_databases(
    pg_service: CareService, service: CareService
) -> None:
    assert pg_service.install_id() != service.install_id()
    assert pg_service.install_id() == pg_service.install_id()  # made once, then kept


def test_a_process_whose_lease_lapsed_cannot_requeue_or_fail_what_another_finished(
    pg_config: Config, pg_store: Store
) -> None:
    """Process A takes a card and stalls past its lease; B takes it over and sends it.
    When A wakes up, its retry or failure must not put the card back (a second post)."""
    from bot import outbox as ob

    clock = FixedClock(START)
    a = ob.Outbox(pg_store, clock, owner="host:1:a", lease_seconds=5)
    b = ob.Outbox(pg_store, clock, owner="host:2:b", lease_seconds=5)
    with pg_store.write() as db:
        ob.enqueue(db, kind=ob.CARD, now=START, channel="C0CARE")
    taken = a.claim([ob.CARD])
    assert taken is not None
    clock.advance(6)  # A stalls; its lease lapses
    again = b.claim([ob.CARD])
    assert again is not None and again.id == taken.id
    b.done(again.id)
    assert a.retry_later(taken.id, "timeout", 2) is False
    with pg_store.write() as db:
        assert a.fail(db, taken.id, "refused") is False
    row = pg_store.query("SELECT state, claimed_by FROM outbox WHERE id = ?", [taken.id])[0]
    assert (row["state"], row["claimed_by"]) == ("done", "host:2:b")
    assert b.claim([ob.CARD]) is None, "nothing is queued to be sent again"

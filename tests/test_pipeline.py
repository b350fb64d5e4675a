"""Ingest: dedupe, routing, conversations, customer history, and the card queued for each case."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.config import Config, parse_config
from bot.models import Classification, Intent, Mention, Priority, Sentiment
from bot.routing import route
from bot.service import CareService
from tests.conftest import START, config_data, mention, new_case


def test_the_same_mention_twice_is_stored_once(service: CareService) -> None:
    m = mention()
    first = service.ingest(m)
    again = service.ingest_many([m, m])
    assert (first.created, again.created, again.duplicates) == (1, 0, 2)
    assert service.store.scalar("SELECT count(*) FROM cases") == 1
    assert service.store.scalar("SELECT count(*) FROM mentions") == 1
    assert service.store.scalar("SELECT count(*) FROM outbox WHERE kind = 'card'") == 1


def test_same_id_on_another_network_is_a_different_mention(service: CareService) -> None:
    service.ingest(mention(id="77"))
    stats = service.ingest(mention(id="77", network="mastodon"))
    assert stats.created == 1


def test_every_case_gets_a_card_queued_in_its_departments_channel(service: CareService) -> None:
    complaint = new_case(service, "@AcmeAir the lost bag desk is closed, where is my suitcase?")
    praise = new_case(service, "Lovely crew on my flight today, thank you @AcmeAir!")
    cards = service.store.query(
        "SELECT case_id, channel FROM outbox WHERE kind = 'card' ORDER BY id"
    )
    assert cards == [
        {"case_id": complaint, "channel": "care"},
        {"case_id": praise, "channel": "marketing"},
    ]
    case = service.get_case(praise)
    assert case.intent is Intent.PRAISE and case.needs_reply is False
    assert "intent praise" in case.route_reason


def test_case_records_reading_sla_and_audit(service: CareService) -> None:
    case = service.get_case(new_case(service))
    assert (case.intent, case.sentiment, case.needs_reply) == (
        Intent.COMPLAINT,
        Sentiment.NEGATIVE,
        True,
    )
    assert case.sla_due_at == START + timedelta(minutes=60)
    created = service.audit_trail(case.id)
    assert [e["action"] for e in created] == ["case.created"]


def test_a_case_knows_the_authors_earlier_cases(service: CareService) -> None:
    first = new_case(service, "@AcmeAir my bag did not arrive in Lisbon", author_id="7")
    new_case(service, "@AcmeAir unrelated person here", author_id="8", author_handle="other")
    third = new_case(service, "@AcmeAir still no bag, third day now", author_id="7")
    earlier = service.view(third).earlier
    assert [e.case_id for e in earlier] == [first]
    assert "Lisbon" in earlier[0].text
    assert service.view(first).earlier == []


def test_a_reply_in_the_same_conversation_joins_the_open_case(service: CareService) -> None:
    root = mention("@AcmeAir my flight is delayed again", id="500", conversation_id="500")
    follow = mention("@AcmeAir any update??", id="501", conversation_id="500")
    stranger = mention(
        "@AcmeAir same here!", id="502", conversation_id="500", author_id="9", author_handle="bo"
    )
    stats = service.ingest_many([root, follow, stranger])
    assert (stats.created, stats.joined) == (2, 1)
    view = service.view(stats.case_ids[0])
    assert [p.text for p in view.thread] == ["@AcmeAir any update??"]
    assert view.case.mention_count == 2


def test_ingest_is_idempotent_across_service_instances(
    config: Config, service: CareService, clock
) -> None:  # type: ignore[no-untyped-def]
    batch = [mention(id=str(i)) for i in range(300)]
    service.ingest_many(batch, batch_size=50)
    other = CareService(config, service.store, clock=clock)
    stats = other.ingest_many(batch, batch_size=64)
    assert stats.created == 0 and stats.duplicates == 300
    assert service.store.scalar("SELECT count(*) FROM cases") == 300


def test_mention_text_is_cleaned_and_bounded() -> None:
    m = mention("  hello\x00 world\x07 " + "x" * 20_000)
    assert "\x00" not in m.text and "\x07" not in m.text
    assert len(m.text) == 10_000


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"text": "   "}, "text"),
        ({"created_at": "2026-11-02T09:00:00"}, "timezone"),
        ({"author_followers": -1}, "author_followers"),
        ({"id": ""}, "id"),
    ],
)
def test_invalid_mentions_are_refused(fields: dict, problem: str) -> None:  # type: ignore[type-arg]
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=problem):
        mention(**fields)


def test_numeric_ids_stay_exact() -> None:
    m = Mention.model_validate(
        {
            "network": "X",
            "id": 1860000000000000001,
            "author_id": 42,
            "author_handle": "@maya",
            "text": "hi",
            "created_at": "2026-11-02T09:00:00Z",
        }
    )
    assert (m.network, m.id, m.author_id, m.author_handle) == (
        "x",
        "1860000000000000001",
        "42",
        "maya",
    )


# ------------------------------------------------------------------ routing rules


def reading(intent: Intent = Intent.OTHER, language: str = "en") -> Classification:
    return Classification(intent, Sentiment.NEUTRAL, Priority.NORMAL, False, language)


@pytest.fixture
def routing_config(tmp_path) -> Config:  # type: ignore[no-untyped-def]
    data = config_data()
    data["departments"].append(
        {
            "id": "press",
            "name": "Press Office",
            "slack_channel": "C0PRESS",
            "intents": ["press"],
            "authors": ["@priya_writes"],
        }
    )
    data["departments"].append(
        {"id": "es", "name": "Equipo ES", "slack_channel": "C0ES", "languages": ["es"]}
    )
    data["departments"][1]["keywords"] = ["lounge*"]
    return parse_config(data, base_dir=tmp_path)


@pytest.mark.parametrize(
    ("text", "handle", "intent", "language", "department", "why"),
    [
        ("I want a refund", "anna", Intent.OTHER, "en", "care", "keyword 'refund'"),
        ("REFUND now", "anna", Intent.OTHER, "en", "care", "keyword 'refund'"),
        ("refunded already", "anna", Intent.OTHER, "en", "care", "default department"),
        ("my lost bag", "anna", Intent.OTHER, "en", "care", "keyword 'lost bag'"),
        ("new lounges are great", "anna", Intent.PRAISE, "en", "marketing", "keyword 'lounge*'"),
        ("great crew", "anna", Intent.PRAISE, "en", "marketing", "intent praise"),
        ("any comment?", "anna", Intent.PRESS, "en", "marketing", "intent press"),
        ("refund question", "priya_writes", Intent.PRESS, "en", "press", "author @priya_writes"),
        ("quiero un refund", "ana", Intent.COMPLAINT, "es", "es", "language 'es'"),
        ("hello", "anna", Intent.OTHER, "en", "care", "default department"),
    ],
)
def test_routing_rules(
    routing_config: Config,
    text: str,
    handle: str,
    intent: Intent,
    language: str,
    department: str,
    why: str,
) -> None:
    result = route(routing_config, mention(text, author_handle=handle), reading(intent, language))
    assert result.department == department
    assert why in result.reason


def test_without_a_default_flag_the_first_department_takes_the_rest(tmp_path) -> None:  # type: ignore[no-untyped-def]
    data = config_data()
    data["departments"][0]["default"] = False
    data["departments"].reverse()
    config = parse_config(data, base_dir=tmp_path)
    assert route(config, mention("hello"), reading()).department == "marketing"

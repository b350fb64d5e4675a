"""Shared fixtures: a real SQLite store in a temp dir, a hand-moved clock, a real config."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.config import Config, parse_config
from bot.delivery import DryRunPublisher, PublishWorker
from bot.models import Actor, Mention
from bot.ports import FixedClock
from bot.service import CareService
from bot.store import Store

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # a Monday morning

AGENT = Actor("U0AGENT1")
AGENT2 = Actor("U0AGENT2")
LEAD = Actor("U0LEAD")
LEAD2 = Actor("U0LEAD2")
MKT = Actor("U0MKT1")
MKTLEAD = Actor("U0MKTLEAD")
ADMIN = Actor("U0ADMIN")
STRANGER = Actor("U0NOBODY")


def config_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "bot": {"brand": "Acme Air", "database": "test.db", "timezone": "Europe/London"},
        "slack": {"enabled": True, "mode": "http", "admins": ["U0ADMIN"]},
        "departments": [
            {
                "id": "care",
                "name": "Customer Care",
                "slack_channel": "C0CARE",
                "intents": ["complaint", "question"],
                "keywords": ["refund", "delayed", "lost bag"],
                "members": ["U0AGENT1", "U0AGENT2"],
                "managers": ["U0LEAD", "U0LEAD2"],
                "first_response_minutes": 60,
                "default": True,
            },
            {
                "id": "marketing",
                "name": "Marketing",
                "slack_channel": "C0MKT",
                "intents": ["praise", "press"],
                "members": ["U0MKT1"],
                "managers": ["U0MKTLEAD"],
            },
        ],
        "publish": {"dry_run": True},
    }
    for key, value in overrides.items():
        data[key] = value
    return data


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return parse_config(config_data(), base_dir=tmp_path)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def store(config: Config) -> Iterator[Store]:
    store = Store(config.database_path)
    yield store
    store.close()


@pytest.fixture
def service(config: Config, store: Store, clock: FixedClock) -> CareService:
    return CareService(config, store, clock=clock)


@pytest.fixture
def publisher(service: CareService, store: Store, clock: FixedClock) -> PublishWorker:
    return PublishWorker(service, DryRunPublisher(store, clock))


_ids = itertools.count(1000)


def mention(
    text: str = "@AcmeAir my flight was delayed 3 hours, I want a refund", **fields: Any
) -> Mention:
    data: dict[str, Any] = {
        "network": "x",
        "id": str(next(_ids)),
        "author_id": "42",
        "author_handle": "maya",
        "author_name": "Maya",
        "text": text,
        "created_at": START,
    }
    data.update(fields)
    return Mention.model_validate(data)


def new_case(service: CareService, text: str | None = None, **fields: Any) -> int:
    stats = service.ingest(mention(text, **fields) if text else mention(**fields))
    assert stats.created == 1
    return stats.case_ids[0]

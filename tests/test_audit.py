"""The audit log: append-only, hash-chained, and `socialcare audit verify` catches tampering."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bot import audit
from bot.cli import main
from bot.service import CareService
from tests.conftest import AGENT, LEAD, new_case

CONFIG = """
[bot]
brand = "Acme Air"
database = "audit.db"
[slack]
enabled = false
[[departments]]
id = "care"
name = "Customer Care"
members = ["U0AGENT1"]
managers = ["U0LEAD"]
"""


@pytest.fixture
def busy_service(service: CareService) -> CareService:
    case_id = new_case(service)
    service.reply(AGENT, case_id, "We are sorry, please DM us your booking reference.")
    service.approve(LEAD, case_id)
    return service


def test_every_change_is_logged_with_actor_case_and_text_hash(busy_service: CareService) -> None:
    rows = busy_service.audit_trail(1)
    assert [(r["actor"], r["action"]) for r in rows] == [
        ("system:socialcare", "case.created"),
        ("slack:U0AGENT1", "claim"),
        ("slack:U0AGENT1", "draft"),
        ("slack:U0AGENT1", "submit"),
        ("slack:U0LEAD", "approve"),
    ]
    assert rows[2]["text_hash"] == rows[4]["text_hash"] is not None
    assert audit.verify(busy_service.store.db).ok


def test_the_log_refuses_updates_and_deletes(busy_service: CareService) -> None:
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        busy_service.store.db.execute("UPDATE audit SET actor = 'slack:U0EVIL' WHERE seq = 5")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        busy_service.store.db.execute("DELETE FROM audit WHERE seq = 5")


def _tamper(db: sqlite3.Connection, sql: str) -> None:
    db.execute("DROP TRIGGER audit_append_only_update")
    db.execute("DROP TRIGGER audit_append_only_delete")
    db.execute(sql)


@pytest.mark.parametrize(
    ("sql", "bad_seq", "problem"),
    [
        ("UPDATE audit SET actor = 'slack:U0EVIL' WHERE seq = 5", 5, "changed"),
        ("UPDATE audit SET detail = '{}' WHERE seq = 2", 2, "changed"),
        ("DELETE FROM audit WHERE seq = 3", 4, "missing"),
        ("DELETE FROM audit WHERE seq = (SELECT max(seq) FROM audit)", 5, "removed"),
    ],
)
def test_verify_finds_the_first_tampered_entry(
    busy_service: CareService, sql: str, bad_seq: int, problem: str
) -> None:
    _tamper(busy_service.store.db.conn, sql)
    result = audit.verify(busy_service.store.db)
    assert not result.ok
    assert result.first_bad_seq == bad_seq
    assert problem in result.problem


def test_audit_verify_command_exit_codes(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "socialcare.toml"
    config.write_text(CONFIG)
    jsonl = tmp_path / "m.jsonl"
    jsonl.write_text(
        '{"network":"x","id":"1","author_id":"9","author_handle":"a","text":"late again",'
        '"created_at":"2026-11-02T09:00:00Z"}\n'
    )
    assert main(["ingest", str(jsonl), "-c", str(config)]) == 0
    assert main(["audit", "verify", "-c", str(config)]) == 0
    assert "intact: 1 entries" in capsys.readouterr().out
    db = sqlite3.connect(tmp_path / "audit.db")
    _tamper(db, "UPDATE audit SET action = 'nothing.to.see' WHERE seq = 1")
    db.commit()
    db.close()
    assert main(["audit", "verify", "-c", str(config)]) == 1
    assert "TAMPERED at entry 1" in capsys.readouterr().err

"""The audit log: append-only, hash-chained, and `socialcare audit verify` catches tampering."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
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


def _unlock(db: sqlite3.Connection) -> None:
    db.execute("DROP TRIGGER audit_append_only_update")
    db.execute("DROP TRIGGER audit_append_only_delete")


def _tamper(db: sqlite3.Connection, sql: str) -> None:
    _unlock(db)
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


# ------------------------------------------------------------------ witnessed heads


def _log(tmp_path: Path, first: int, last: int) -> Path:
    """Config for tmp_path/audit.db, with mentions `first`..`last` ingested (one entry each)."""
    config = tmp_path / "socialcare.toml"
    config.write_text(CONFIG)
    jsonl = tmp_path / f"m{first}.jsonl"
    jsonl.write_text(
        "".join(
            f'{{"network":"x","id":"{i}","author_id":"{i}","author_handle":"a{i}",'
            f'"text":"late again {i}","created_at":"2026-11-02T09:00:00Z"}}\n'
            for i in range(first, last + 1)
        )
    )
    assert main(["ingest", str(jsonl), "-c", str(config)]) == 0
    return config


def _witness(config: Path, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert main(["audit", "head", "-c", str(config)]) == 0
    return capsys.readouterr().out.strip()


def _store_head(db: sqlite3.Connection, value: str) -> None:
    db.execute("UPDATE settings SET value = ? WHERE key = 'audit_head'", (value,))


def _cut_tail_and_rewrite_head(db: sqlite3.Connection) -> None:
    db.execute("DELETE FROM audit WHERE seq > 2")
    _store_head(db, db.execute("SELECT hash FROM audit WHERE seq = 2").fetchone()[0])


def _edit_and_rehash(db: sqlite3.Connection) -> None:
    """Change entry 2, then recompute every hash after it and the stored head."""
    db.execute("UPDATE audit SET action = 'nothing.to.see' WHERE seq = 2")
    db.row_factory = sqlite3.Row
    prev = db.execute("SELECT hash FROM audit WHERE seq = 1").fetchone()[0]
    for row in db.execute("SELECT * FROM audit WHERE seq >= 2 ORDER BY seq").fetchall():
        new_hash = audit._digest({**dict(row), "prev_hash": prev})
        db.execute(
            "UPDATE audit SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, new_hash, row["seq"])
        )
        prev = new_hash
    _store_head(db, prev)


TAMPERINGS: list[tuple[str, Callable[[sqlite3.Connection], object], bool]] = [
    # (what, how, whether the chain alone catches it)
    ("edit an entry", lambda db: db.execute("UPDATE audit SET actor = 'x' WHERE seq = 2"), True),
    ("delete a middle entry", lambda db: db.execute("DELETE FROM audit WHERE seq = 2"), True),
    ("delete the tail", lambda db: db.execute("DELETE FROM audit WHERE seq >= 4"), True),
    ("delete the tail and rewrite the stored head", _cut_tail_and_rewrite_head, False),
    ("edit an entry and rehash the rest", _edit_and_rehash, False),
]


@pytest.mark.parametrize(
    ("what", "tamper", "chain_alone"), TAMPERINGS, ids=[t[0] for t in TAMPERINGS]
)
def test_verify_against_a_witnessed_head_catches_every_tampering(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    what: str,
    tamper: Callable[[sqlite3.Connection], object],
    chain_alone: bool,
) -> None:
    config = _log(tmp_path, 1, 3)
    witness = _witness(config, capsys)
    assert witness.startswith("3:")
    _log(tmp_path, 4, 5)  # the log grows after the head was written down
    db = sqlite3.connect(tmp_path / "audit.db")
    _unlock(db)
    tamper(db)
    db.commit()
    db.close()
    capsys.readouterr()
    assert main(["audit", "verify", "-c", str(config), "--expect-head", witness]) == 1, what
    out, err = capsys.readouterr()
    assert not out and err.startswith("audit log TAMPERED at entry ")
    assert len(err.strip().splitlines()) == 1
    assert main(["audit", "verify", "-c", str(config)]) == (1 if chain_alone else 0)


def test_a_log_that_grew_since_the_witness_verifies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _log(tmp_path, 1, 3)
    witness = _witness(config, capsys)
    _log(tmp_path, 4, 5)
    head = _witness(config, capsys)
    assert head.startswith("5:") and head != witness
    assert main(["audit", "verify", "-c", str(config), "--expect-head", witness]) == 0
    assert f"intact: 5 entries, head {head}; extends {witness}" in capsys.readouterr().out
    assert main(["audit", "verify", "-c", str(config), "--expect-head", head.upper()]) == 0


def test_audit_head_refuses_to_vouch_for_a_tampered_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _log(tmp_path, 1, 3)
    db = sqlite3.connect(tmp_path / "audit.db")
    _tamper(db, "UPDATE audit SET actor = 'x' WHERE seq = 2")
    db.commit()
    db.close()
    capsys.readouterr()
    assert main(["audit", "head", "-c", str(config)]) == 1
    out, err = capsys.readouterr()
    assert not out and "TAMPERED at entry 2" in err


@pytest.mark.parametrize(
    "value",
    [
        "",
        "abc",
        "3",
        "3:",
        "3:xyz",
        "-1:" + "a" * 64,
        "3:" + "a" * 63,
        "0:" + "f" * 64,
        "٣:" + "a" * 64,
    ],
)
def test_a_malformed_expected_head_is_bad_usage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    config = _log(tmp_path, 1, 1)
    capsys.readouterr()
    assert main(["audit", "verify", "-c", str(config), f"--expect-head={value}"]) == 2
    out, err = capsys.readouterr()
    assert not out and err.startswith("error: --expect-head ")
    assert len(err.strip().splitlines()) == 1


def test_verify_inside_a_write_reads_that_transaction(busy_service: CareService) -> None:
    with busy_service.store.write() as db:
        result = audit.verify(db)
    assert result.ok and result.head == audit.head(busy_service.store.db)
    assert str(result.head).startswith("5:")

"""Append-only, hash-chained audit log: every state change, refusal and publish.

Each row's hash covers its fields and the previous row's hash, so changing,
removing or reordering any row breaks the chain from that row on.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlite_utils import Database

GENESIS = "0" * 64


def _digest(row: dict[str, Any]) -> str:
    body = json.dumps(
        {key: row[key] for key in sorted(row) if key not in {"seq", "hash"}},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def append(
    db: Database,
    *,
    at: datetime,
    actor: str,
    action: str,
    outcome: str = "ok",
    case_id: int | None = None,
    detail: dict[str, Any] | None = None,
    text_hash: str | None = None,
) -> str:
    """Append one entry; call inside `Store.write()` so the chain cannot fork."""
    last = db.execute("SELECT hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    row: dict[str, Any] = {
        "at": at.isoformat(),
        "actor": actor,
        "action": action,
        "case_id": case_id,
        "outcome": outcome,
        "detail": json.dumps(detail or {}, sort_keys=True, ensure_ascii=False),
        "text_hash": text_hash,
        "prev_hash": last[0] if last else GENESIS,
    }
    row["hash"] = _digest(row)
    db.execute(
        "INSERT INTO audit (at, actor, action, case_id, outcome, detail, text_hash,"
        " prev_hash, hash) VALUES (:at, :actor, :action, :case_id, :outcome, :detail,"
        " :text_hash, :prev_hash, :hash)",
        row,
    )
    # The head is kept beside the chain so a truncated tail is detected too.
    db.execute(
        "INSERT INTO settings (key, value, updated_at) VALUES ('audit_head', :hash, :at)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        {"hash": row["hash"], "at": row["at"]},
    )
    return str(row["hash"])


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    entries: int
    first_bad_seq: int | None = None
    problem: str = ""


def verify(db: Database) -> VerifyResult:
    """Walk the chain from the start; report the first entry that does not fit."""
    expected_prev = GENESIS
    count = 0
    last_seq = 0
    for row in db.query("SELECT * FROM audit ORDER BY seq"):
        count += 1
        if row["seq"] != last_seq + 1:
            return VerifyResult(False, count, row["seq"], f"entry {last_seq + 1} is missing")
        last_seq = row["seq"]
        if row["prev_hash"] != expected_prev:
            return VerifyResult(False, count, row["seq"], "does not link to the entry before it")
        if _digest(row) != row["hash"]:
            return VerifyResult(False, count, row["seq"], "its contents were changed")
        expected_prev = row["hash"]
    head = db.execute("SELECT value FROM settings WHERE key = 'audit_head'").fetchone()
    if (head[0] if head else GENESIS) != expected_prev:
        return VerifyResult(False, count, last_seq + 1, "entries after the last one were removed")
    return VerifyResult(True, count)

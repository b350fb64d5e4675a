"""Append-only, hash-chained audit log: every state change, refusal and publish.

Each row's hash covers its fields and the previous row's hash, so changing,
removing or reordering any row breaks the chain from that row on. The chain alone
cannot tell a removed tail whose stored head was rewritten too: a head `N:HASH` written
down elsewhere (a witness, e.g. from the managers' digest) can, via `verify(expect=...)`.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlite_utils import Database

GENESIS = "0" * 64
_HEAD = re.compile(r"([0-9]{1,18}):([0-9a-fA-F]{64})")


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
    last = db.execute("SELECT hash, seq FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
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
    # The number is given, not left to the engine: a sequence (PostgreSQL) skips numbers
    # on rollback, and a gap would read as a deleted entry.
    db.execute(
        "INSERT INTO audit (seq, at, actor, action, case_id, outcome, detail, text_hash,"
        " prev_hash, hash) VALUES (:seq, :at, :actor, :action, :case_id, :outcome, :detail,"
        " :text_hash, :prev_hash, :hash)",
        {**row, "seq": (last[1] if last else 0) + 1},
    )
    # The head is kept beside the chain so a truncated tail is detected too.
    db.execute(
        "INSERT INTO settings (key, value, updated_at) VALUES ('audit_head', :hash, :at)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        {"hash": row["hash"], "at": row["at"]},
    )
    return str(row["hash"])


@dataclass(frozen=True)
class Head:
    """A point of the chain: entry number `entries` (its count when intact) and its hash."""

    entries: int
    hash: str

    def __str__(self) -> str:
        return f"{self.entries}:{self.hash}"

    @classmethod
    def parse(cls, value: str) -> Head:
        """`N:HASH` as `str()` writes it; ValueError if it is not that shape."""
        match = _HEAD.fullmatch(value.strip())
        if not match:
            raise ValueError(f"{value!r} is not N:HASH (an entry count, a colon, 64 hex digits)")
        entries, digest = int(match[1]), match[2].lower()
        if entries == 0 and digest != GENESIS:
            raise ValueError(f"{value!r}: an empty log's head is 0:{GENESIS}")
        return cls(entries, digest)


def head(db: Database) -> Head:
    """The last entry's number and hash (0 and GENESIS for an empty log); does not verify."""
    last = db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    return Head(int(last[0]), str(last[1])) if last else Head(0, GENESIS)


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    entries: int
    first_bad_seq: int | None = None
    problem: str = ""
    head: Head | None = None  # the verified head, when intact


def verify(db: Database, *, expect: Head | None = None) -> VerifyResult:
    """Walk the chain from the start; report the first entry that does not fit.

    With `expect` (a witnessed head), the log must also still hold that entry, unchanged.
    """
    # One read snapshot: entries a running bot appends meanwhile must not look like a
    # stored head that no longer matches the chain.
    snapshot = not db.conn.in_transaction
    if snapshot:
        db.conn.execute("BEGIN")
    try:
        return _walk(db, expect)
    finally:
        if snapshot:
            db.conn.execute("COMMIT")


def _walk(db: Database, expect: Head | None) -> VerifyResult:
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
        if expect and row["seq"] == expect.entries and row["hash"] != expect.hash:
            # Every link holds, so the chain was rehashed from some entry up to here.
            return VerifyResult(
                False, count, row["seq"], f"it is not the witnessed {expect}; history was rewritten"
            )
        expected_prev = row["hash"]
    stored = db.execute("SELECT value FROM settings WHERE key = 'audit_head'").fetchone()
    if (stored[0] if stored else GENESIS) != expected_prev:
        return VerifyResult(False, count, last_seq + 1, "entries after the last one were removed")
    if expect and last_seq < expect.entries:
        # The stored head was rewritten along with the removal; only the witness remembers.
        return VerifyResult(
            False,
            count,
            last_seq + 1,
            f"entries after the last one were removed (the witnessed head {expect} is gone)",
        )
    return VerifyResult(True, count, head=Head(last_seq, expected_prev))

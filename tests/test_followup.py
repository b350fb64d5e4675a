"""Follow-through with an injected clock: SLA reminders and escalation, digests, spikes, KPIs."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.cli import main
from bot.config import Config, parse_config
from bot.delivery import DryRunPublisher, PublishWorker
from bot.followup import FollowUp
from bot.ports import FixedClock
from bot.service import CareService
from bot.store import Store
from tests.conftest import AGENT, LEAD, config_data, mention, new_case

MONDAY_9 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # Europe/London is UTC in November


def make(tmp_path: Path, clock: FixedClock, **overrides: object) -> tuple[CareService, FollowUp]:
    data = config_data()
    data["digest"] = {"time": "09:00", "managers_channel": "C0MANAGERS"}
    data.update(overrides)
    config: Config = parse_config(data, base_dir=tmp_path)
    service = CareService(config, Store(config.database_path), clock=clock)
    return service, FollowUp(service)


def notices(service: CareService) -> list[tuple[str, str, str]]:
    rows = service.store.query(
        "SELECT kind, channel, payload FROM outbox WHERE kind IN ('notify', 'note', 'digest')"
        " ORDER BY id"
    )
    return [(r["kind"], r["channel"], r["payload"]) for r in rows]


def test_reminder_then_escalation_fire_once_each(tmp_path: Path) -> None:
    clock = FixedClock(MONDAY_9)
    service, followup = make(tmp_path, clock)
    case_id = service.ingest(mention(created_at=MONDAY_9)).case_ids[0]  # due 10:00
    service.claim(AGENT, case_id)
    clock.advance(40 * 60)  # 09:40: not yet
    assert followup.check_sla(clock.now()) == 0
    clock.advance(6 * 60)  # 09:46: within 15 minutes of the due time
    assert followup.check_sla(clock.now()) == 1
    assert followup.check_sla(clock.now()) == 0
    kinds = [(k, c) for k, c, _ in notices(service)]
    assert ("notify", "user:U0AGENT1") in kinds and ("note", "care") in kinds
    clock.advance(15 * 60)  # 10:01: breached
    assert FollowUp(service).check_sla(clock.now()) == 1  # a restarted process too
    assert followup.check_sla(clock.now()) == 0
    escalation = [p for k, c, p in notices(service) if c == "managers"]
    assert len(escalation) == 1
    assert "SLA breached: case #1" in escalation[0] and "<@U0LEAD>" in escalation[0]
    assert [e["action"] for e in service.audit_trail(case_id)][-2:] == [
        "sla.reminder",
        "sla.breach",
    ]


def test_answered_or_dismissed_cases_get_no_reminders(tmp_path: Path) -> None:
    clock = FixedClock(MONDAY_9)
    service, followup = make(tmp_path, clock)
    answered = service.ingest(mention(created_at=MONDAY_9)).case_ids[0]
    dismissed = service.ingest(mention(created_at=MONDAY_9, author_id="9")).case_ids[0]
    service.reply(AGENT, answered, "We are on it, DM us please.")
    service.approve(LEAD, answered)
    PublishWorker(service, DryRunPublisher(service.store, clock)).drain()
    service.dismiss(AGENT, dismissed, "resolved by phone")
    clock.advance(3 * 3600)
    assert followup.check_sla(clock.now()) == 0


def test_sla_counts_business_hours_only(tmp_path: Path) -> None:
    friday_4pm = datetime(2026, 11, 6, 16, 30, tzinfo=UTC)
    clock = FixedClock(friday_4pm)
    service, _ = make(tmp_path, clock)
    case = service.get_case(service.ingest(mention(created_at=friday_4pm)).case_ids[0])
    assert case.sla_due_at == datetime(2026, 11, 9, 9, 30, tzinfo=UTC)  # Monday 09:30
    urgent = service.get_case(
        service.ingest(
            mention("@AcmeAir medical emergency, stranded at the gate", created_at=friday_4pm)
        ).case_ids[0]
    )
    assert urgent.sla_due_at == friday_4pm + timedelta(minutes=60)


def seed_day(service: CareService, clock: FixedClock) -> None:
    """Three complaints and a praise on Sunday; one complaint answered after 30 minutes."""
    sunday = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    ids = [
        service.ingest(
            mention(
                f"@AcmeAir refund {i} is late",
                created_at=sunday + timedelta(hours=i),
                author_id=str(i),
            )
        ).case_ids[0]
        for i in range(3)
    ]
    service.ingest(mention("Lovely crew, thank you @AcmeAir!", created_at=sunday, author_id="9"))
    service.ingest(
        mention("@AcmeAir you should add a seat map to the app", created_at=sunday, author_id="10")
    )
    clock_before = clock.now()
    clock._now = sunday + timedelta(minutes=30)
    service.reply(AGENT, ids[0], "Sorry! DM us your booking reference please.")
    service.approve(LEAD, ids[0])
    PublishWorker(service, DryRunPublisher(service.store, clock)).drain()
    service.dismiss(AGENT, ids[2], "duplicate")
    clock._now = clock_before


def test_scheduled_digest_has_the_right_figures_and_is_sent_once(tmp_path: Path) -> None:
    clock = FixedClock(MONDAY_9 - timedelta(hours=1))
    service, followup = make(tmp_path, clock)
    assert not followup.run_scheduled_digest(clock.now()), "a new install sends nothing at once"
    clock.advance(3660)
    seed_day(service, clock)
    assert followup.run_scheduled_digest(clock.now())
    assert not followup.run_scheduled_digest(clock.now())
    digests = [p for k, _, p in notices(service) if k == "digest"]
    assert len(digests) == 3  # care, marketing, managers
    import json

    care = json.loads(digests[0])["digest"]
    totals = care["totals"]
    # Care: three complaints and the suggestion (no rule sends suggestions elsewhere).
    assert (totals["received"], totals["needs_reply"], totals["replied"], totals["dismissed"]) == (
        4,
        4,
        1,
        1,
    )
    assert totals["median_first_response_s"] == 1800
    assert (
        care["since"] == "2026-11-01T09:00:00+00:00"
        and care["until"] == "2026-11-02T09:00:00+00:00"
    )
    everyone = json.loads(digests[2])["digest"]
    assert everyone["scope"] == "all" and everyone["totals"]["received"] == 5
    assert [s["text"] for s in everyone["suggestions"]] == [
        "@AcmeAir you should add a seat map to the app"
    ]


def test_the_managers_digest_carries_a_witness_of_the_audit_head(tmp_path: Path) -> None:
    import json

    from bot import audit

    clock = FixedClock(MONDAY_9)
    service, followup = make(tmp_path, clock)
    seed_day(service, clock)
    head_before = audit.head(service.store.db)
    assert followup.send_digests(clock.now())
    payloads = {c: json.loads(p)["digest"] for k, c, p in notices(service) if k == "digest"}
    assert payloads["managers"]["audit_head"] == {
        "entries": head_before.entries,
        "hash": head_before.hash,
    }
    assert payloads["care"]["audit_head"] is None and payloads["marketing"]["audit_head"] is None
    witness = audit.Head(**payloads["managers"]["audit_head"])
    new_case(service)  # the log grows on; the witness still holds
    assert audit.verify(service.store.db, expect=witness).ok


def test_a_digest_missed_while_down_is_sent_once_after_restart(tmp_path: Path) -> None:
    clock = FixedClock(MONDAY_9 - timedelta(hours=1))
    service, followup = make(tmp_path, clock)
    assert not followup.run_scheduled_digest(clock.now())  # first run: nothing was missed
    sent_before = len([n for n in notices(service) if n[0] == "digest"])
    assert sent_before == 0
    clock.advance(3 * 3600)  # the bot was down at 09:00 and is back at 11:00
    restarted = FollowUp(service)
    assert restarted.tick(clock.now(), owner="b")["digest"] is True
    assert restarted.tick(clock.now(), owner="b")["digest"] is False
    assert FollowUp(service).run_scheduled_digest(clock.now()) is False
    assert len([n for n in notices(service) if n[0] == "digest"]) == sent_before + 3


def test_only_one_scheduler_per_database(tmp_path: Path) -> None:
    clock = FixedClock(MONDAY_9)
    service, followup = make(tmp_path, clock)
    assert followup.hold_lease("a", clock.now())
    assert not followup.hold_lease("b", clock.now())
    assert followup.tick(clock.now(), owner="b") == {"lease": False}
    clock.advance(4 * 60)  # the first holder died: its lease expires
    assert followup.hold_lease("b", clock.now())


def test_a_spike_is_alerted_once_per_episode(tmp_path: Path) -> None:
    clock = FixedClock(MONDAY_9)
    service, followup = make(tmp_path, clock)
    start = MONDAY_9 - timedelta(days=2)
    service.ingest_many(
        mention(
            f"@AcmeAir hello number {i}", created_at=start + timedelta(hours=i), author_id=str(i)
        )
        for i in range(47)
    )  # about one an hour
    assert not followup.check_spike(clock.now())
    service.ingest_many(
        mention(
            f"@AcmeAir my flight {i} is cancelled, worst airline",
            created_at=clock.now() - timedelta(minutes=i + 1),
            author_id=f"s{i}",
        )
        for i in range(40)
    )
    assert followup.check_spike(clock.now())
    assert not followup.check_spike(clock.now())
    alerts = [p for k, c, p in notices(service) if c == "managers"]
    assert len(alerts) == 1 and "Spike alert: 40 mentions" in alerts[0] and "cancelled" in alerts[0]
    assert "By network" not in alerts[0]  # one network: no breakdown to show
    clock.advance(3 * 3600)  # calm again: the episode ends, a new spike alerts again
    assert not followup.check_spike(clock.now())
    service.ingest_many(
        mention(
            f"@AcmeAir outage {i}, app not working",
            created_at=clock.now() - timedelta(minutes=i + 1),
            author_id=f"t{i}",
        )
        for i in range(45)
    )
    assert followup.check_spike(clock.now())
    assert len([p for k, c, p in notices(service) if c == "managers"]) == 2


def test_report_csv_matches_hand_computed_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = FixedClock(MONDAY_9)
    service, _ = make(tmp_path, clock)
    seed_day(service, clock)
    config_path = tmp_path / "socialcare.toml"
    config_path.write_text(
        '[bot]\nbrand = "Acme Air"\ndatabase = "test.db"\ntimezone = "Europe/London"\n'
        "[slack]\nenabled = false\n"
        '[[departments]]\nid = "care"\nname = "Customer Care"\ndefault = true\n'
        '[[departments]]\nid = "marketing"\nname = "Marketing"\n'
    )
    service.store.close()
    assert (
        main(
            ["report", "-c", str(config_path), "--since", "2026-11-01T00:00:00Z", "--format", "csv"]
        )
        == 0
    )
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    care = rows[0]
    assert care["department"] == "care"
    assert (
        care["received"],
        care["needs_reply"],
        care["replied"],
        care["dismissed"],
        care["open"],
    ) == ("4", "4", "1", "1", "2")
    assert care["response_rate"] == "0.25"
    assert float(care["median_first_response_s"]) == 1800.0
    # Sunday is not a business day: no business time passed before the reply.
    assert float(care["median_first_response_business_s"]) == 0.0
    # The open complaint and the suggestion are overdue; the dismissed one does not count.
    assert care["sla_breaches"] == "2"


def test_digest_command_prints_when_slack_is_off(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_path = tmp_path / "socialcare.toml"
    config_path.write_text(
        '[bot]\nbrand = "Acme Air"\ndatabase = "d.db"\n[slack]\nenabled = false\n'
        '[[departments]]\nid = "care"\nname = "Customer Care"\n'
    )
    assert main(["digest", "-c", str(config_path)]) == 0
    assert main(["digest", "-c", str(config_path)]) == 0  # every call sends
    out = capsys.readouterr()
    assert out.out.count("Daily digest") >= 2 and "printed 1 digest(s)" in out.err
    assert main(["digest", "-c", str(config_path), "--department", "nope"]) == 2


def test_digest_reaches_slack_with_figures_and_a_chart(tmp_path: Path) -> None:
    import json

    from bot.delivery import ChatWorker
    from handlers.slack import SlackSurface
    from integrations.charts import digest_chart
    from integrations.slack_api import SlackApi, make_web_client
    from tests.fakes.slack import start_fake_slack

    clock = FixedClock(MONDAY_9 + timedelta(minutes=1))
    service, followup = make(tmp_path, clock)
    seed_day(service, clock)
    followup.run_scheduled_digest(clock.now() - timedelta(days=1))  # the install's first day
    with start_fake_slack() as fake:
        api = SlackApi(make_web_client("xoxb-test-not-real", fake.api_url))
        surface = SlackSurface(api, service.config, clock, chart=digest_chart)
        followup.run_scheduled_digest(clock.now())
        ChatWorker(service, surface, kinds=("digest",)).drain()
        posts = [p for p in fake.calls_to("chat.postMessage") if not p.get("thread_ts")]
        assert [p["channel"] for p in posts] == ["C0CARE", "C0MKT", "C0MANAGERS"]
        care = json.dumps(posts[0]["blocks"])
        assert "Daily digest: Customer Care" in care
        assert "1 of 4" in care and "25%" in care and "30 min" in care
        uploads = fake.calls_to("files.completeUploadExternal")
        assert len(uploads) == 3
        assert {u["channel_id"] for u in uploads} == {"C0CARE", "C0MKT", "C0MANAGERS"}
        png = [c.params["data"] for c in fake.calls if c.method.startswith("upload:")]
        assert png and all(p.startswith(b"\x89PNG") for p in png)


def test_a_failed_chart_upload_does_not_post_the_digest_twice(tmp_path: Path) -> None:
    from bot.delivery import ChatWorker
    from handlers.slack import SlackSurface
    from integrations.charts import digest_chart
    from integrations.slack_api import SlackApi, make_web_client
    from tests.fakes.slack import start_fake_slack

    clock = FixedClock(MONDAY_9)
    service, followup = make(tmp_path, clock)
    with start_fake_slack() as fake:
        fake.queue("files.completeUploadExternal", body={"ok": False, "error": "internal_error"})
        surface = SlackSurface(
            SlackApi(make_web_client("xoxb-test-not-real", fake.api_url)),
            service.config,
            clock,
            chart=digest_chart,
        )
        followup.send_digests(clock.now(), department="care")
        worker = ChatWorker(service, surface, kinds=("digest",))
        assert worker.drain() == 1
        clock.advance(600)
        assert worker.drain() == 0
        assert len(fake.calls_to("chat.postMessage")) == 1


def test_a_spike_across_networks_says_where_it_comes_from(tmp_path: Path) -> None:
    clock = FixedClock(MONDAY_9)
    service, followup = make(tmp_path, clock)
    handles = {"x": "maya", "bluesky": "maya.bsky.social", "mastodon": "maya@m.example"}
    service.ingest_many(
        mention(
            f"@AcmeAir my flight {i} is cancelled, worst airline",
            created_at=clock.now() - timedelta(minutes=i + 1),
            author_id=f"s{i}",
            network=network,
            author_handle=handles[network],
        )
        for i, network in enumerate(["x"] * 25 + ["bluesky"] * 10 + ["mastodon"] * 5)
    )
    assert followup.check_spike(clock.now())
    [alert] = [p for k, c, p in notices(service) if c == "managers"]
    assert "By network: X 25, Bluesky 10, Mastodon 5." in alert

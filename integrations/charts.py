"""PNG charts for digests, drawn with matplotlib's object-oriented API.

No pyplot: each call builds its own `Figure` on a `FigureCanvasAgg`, so nothing global
is touched (no interactive backend, no figure manager) and charts can be drawn from
worker threads. matplotlib is imported inside the function, so importing this module
costs nothing until a chart is actually drawn.
"""

from __future__ import annotations

import io
import math
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.digest import Digest

WIDTH_PX = 1000
HEIGHT_PX = 500
DPI = 100
HOURS = 24
TITLE_CHARS = 90

_BAR = "#4C72B0"
_LINE = "#DD8452"
_GRID = "#DDDDDD"


def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        return UTC


def _start(since: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(since)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _safe_text(text: str, limit: int) -> str:
    """Text for a matplotlib label: one line, no mathtext (`$`), cut to `limit`."""
    clean = "".join(ch for ch in " ".join(text.split()) if ch.isprintable())
    if len(clean) > limit:
        clean = clean[: limit - 1].rstrip() + "…"
    return clean.replace("$", r"\$")


def hour_labels(digest: Digest, hours: int = HOURS) -> list[str]:
    """Local clock hours ("09", "10", …) of each hourly slot, in the digest's time zone."""
    start = _start(digest.since)
    if start is None:
        return [f"+{n}" for n in range(hours)]
    tz = _zone(digest.timezone)
    # Add hours in UTC and convert each: correct across DST changes (e.g. "01", "01").
    utc = start.astimezone(UTC)
    return [(utc + timedelta(hours=n)).astimezone(tz).strftime("%H") for n in range(hours)]


def digest_chart(digest: Digest) -> bytes:
    """A 1000×500 PNG: mentions per hour (bars) over median first response per hour (line).

    Works for empty days (all zeros, no response times). Hours without a response time
    are gaps in the line.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    hours = max(HOURS, len(digest.volume_by_hour), len(digest.first_response_by_hour))
    volume = [max(0, int(v)) for v in digest.volume_by_hour]
    volume += [0] * (hours - len(volume))
    responses = [
        float(r) if r is not None and math.isfinite(r) else math.nan
        for r in digest.first_response_by_hour
    ]
    responses += [math.nan] * (hours - len(responses))
    labels = hour_labels(digest, hours)
    slots = list(range(hours))

    fig = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True)

    top.bar(slots, volume, color=_BAR, width=0.8)
    top.set_ylabel("Mentions")
    top.set_ylim(0, max(1, max(volume)) * 1.15)
    top.yaxis.set_major_locator(MaxNLocator(integer=True))
    if not any(volume):
        top.text(
            0.5,
            0.5,
            "No mentions in this period",
            transform=top.transAxes,
            ha="center",
            va="center",
            color="#888888",
        )
    top.set_title(f"Mentions received per hour ({sum(volume)} in total)", fontsize=10, loc="left")

    known = [r for r in responses if not math.isnan(r)]
    if known:
        bottom.plot(slots, responses, color=_LINE, marker="o", markersize=4, linewidth=1.5)
        bottom.set_ylim(0, max(known) * 1.15 or 1)
    else:
        bottom.set_ylim(0, 1)
        bottom.text(
            0.5,
            0.5,
            "No first responses in this period",
            transform=bottom.transAxes,
            ha="center",
            va="center",
            color="#888888",
        )
    bottom.set_ylabel("Minutes")
    bottom.set_title("Median first response per hour", fontsize=10, loc="left")

    zone = digest.timezone if isinstance(_zone(digest.timezone), ZoneInfo) else "UTC"
    step = 1 if hours <= 24 else math.ceil(hours / 24)
    bottom.set_xticks(slots[::step])
    bottom.set_xticklabels(labels[::step], fontsize=8)
    bottom.set_xlim(-0.6, hours - 0.4)
    bottom.set_xlabel(f"Hour of arrival ({_safe_text(zone, 40)})")

    for ax in (top, bottom):
        ax.grid(axis="y", color=_GRID, linewidth=0.8)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)

    fig.align_ylabels([top, bottom])
    fig.suptitle(_safe_text(digest.title or "Daily digest", TITLE_CHARS), fontsize=13)
    fig.subplots_adjust(left=0.07, right=0.98, top=0.87, bottom=0.11, hspace=0.35)

    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=DPI, metadata={"Software": None})
    return out.getvalue()

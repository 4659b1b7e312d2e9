"""Times as a station person reads and types them: in the station's zone, whatever the PC's.

A price change typed as 08:00 on a PC set to Asia/Urumqi means 08:00 at the station, not 08:00
in Urumqi's zone two hours behind Beijing: the console sends the wall-clock time as typed
(`effective_local`) and the station reads it in its own configured zone (`[station] timezone`).
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo

BEIJING = timedelta(hours=8)
#: What the console writes beside a time a person could doubt: Xinjiang's stations keep Beijing
#: time, and many PCs there are set to Urumqi's zone (UTC+6).
BEIJING_LABEL = "北京时间"


def zone_label(zone: tzinfo, now: datetime) -> str:
    """北京时间 for a zone at UTC+8 now; else the offset ("UTC+06:00")."""
    offset = now.astimezone(zone).utcoffset() or timedelta(0)
    if offset == BEIJING:
        return BEIJING_LABEL
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def offset_minutes(zone: tzinfo, now: datetime) -> int:
    offset = now.astimezone(zone).utcoffset() or timedelta(0)
    return int(offset.total_seconds()) // 60


def station_time(text: str, zone: tzinfo) -> datetime:
    """ "2026-12-05T08:00" as typed at the station: that wall-clock time in `zone`.
    ValueError for a text that is not such a time."""
    naive = datetime.fromisoformat(text)
    if naive.tzinfo is not None:
        raise ValueError("a station time has no offset: the station's zone is meant")
    return naive.replace(tzinfo=zone)

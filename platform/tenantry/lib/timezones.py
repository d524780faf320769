"""IANA time zone names, read once (the zoneinfo database does not change under a process)."""

from __future__ import annotations

import functools
import zoneinfo


@functools.cache
def known_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())

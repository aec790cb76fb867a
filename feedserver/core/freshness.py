"""How long a channel stays fresh: its ``max-age`` and RSS ``ttl``, from its own pace.

A channel that changes every few minutes should be polled often; one that
changes monthly should not be asked for every 30 seconds.  The pace is read
from the content alone (the channel's item dates), never from the clock, so
the value, and with it the feed's bytes, changes only when the content does:
a quarter of the median interval between the channel's last changes, clamped
between the scan interval (nothing is fresher than a scan) and a ceiling.
Pure: the build computes it, the manifest records it, the web side serves it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from itertools import pairwise
from statistics import median

# The changes the pace is read from: the newest ones say how the channel moves now.
RECENT_CHANGES = 10
# A poller should look about four times per typical interval between changes.
SHARE = 4
DAY = 86_400
# A full archive page (RFC 5005) never changes as articles arrive: caches keep it a week
# without asking again.  Not a year: an edit or a deletion of one of its old articles
# still changes it (feedserver.build.archives), and a cache catches up within the week.
ARCHIVE_CACHE = "public, max-age=604800, immutable"


def channel_max_age(updates: Iterable[datetime], floor: int, ceiling: int = DAY,
                    recent: int = RECENT_CHANGES) -> int:
    """Seconds a channel's feeds stay fresh, from its items' update times.

    Items updated at the same moment are one change (a batch published
    together).  With fewer than two changes the pace is unknown and the answer
    is ``floor``: never staler than a fixed refresh interval would be.  A
    ``ceiling`` at or below ``floor`` turns the adaptation off (``floor``).
    """
    if ceiling <= floor:
        return floor
    moments = sorted({int(moment.timestamp()) for moment in updates}, reverse=True)[:recent]
    if len(moments) < 2:
        return floor
    gaps = [newer - older for newer, older in pairwise(moments)]
    return max(floor, min(ceiling, int(median(gaps)) // SHARE))


def ttl_minutes(seconds: int) -> int:
    """RSS ``ttl`` (whole minutes, rounded up, at least one) for a max-age in seconds."""
    return max(1, math.ceil(seconds / 60))

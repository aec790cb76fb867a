"""``python -m benchmarks.archive_cost SITE --baseline DIR [--pairs N]``: what full history
(RFC 5005 archive pages, :mod:`feedserver.build.archives`) costs a cold ``feedserver build``.

SITE holds a corpus (``seeds/`` and ``config.toml``, such as ``python -m benchmarks``
leaves in ``n1000``; use a copy). Three sides, alternating in every round so that all
see the same machine load: ``before`` (the code in DIR, a checkout of feedserver without
archives), ``after`` (this checkout, ``archive_size`` 50) and ``off`` (this checkout with
``archive_size = 0``). Each a fresh state and
output folder of its own; wall time, CPU of the process tree and peak PSS / RSS sums
(:mod:`benchmarks.measure`). Prints every run, then the medians.
"""

from __future__ import annotations

import sys

from .alternate import SIDES, alternate, arguments, configure


def main() -> int:
    args = arguments(__doc__ or "")
    for side in SIDES:
        # The baseline knows no archive_size; 'after' takes its default (50).
        configure(args.site, side, "archive_size = 0\n" if side == "off" else "",
                  drop=("archive_size",))
    return alternate(args.site, args.baseline, args.pairs)


if __name__ == "__main__":
    sys.exit(main())

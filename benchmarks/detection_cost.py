"""``python -m benchmarks.detection_cost SITE --baseline DIR [--pairs N]``: what automatic
topics and languages cost a cold ``feedserver build``.

SITE holds a corpus (``seeds/`` and ``config.toml``, such as ``python -m benchmarks``
leaves in ``n1000``; use a copy). Three sides, alternating in every round so that all
see the same machine load: ``before`` (the code in DIR, a checkout of feedserver, with
detection on), ``after`` (this checkout) and ``off`` (this checkout with
``detect_topics = false`` and ``detect_language = false``). Each a fresh state and
output folder of its own; wall time, CPU of the process tree and peak PSS / RSS sums
(:mod:`benchmarks.measure`). Prints every run, then the medians.
"""

from __future__ import annotations

import sys

from .alternate import SIDES, alternate, arguments, configure


def main() -> int:
    args = arguments(__doc__ or "")
    for side in SIDES:
        configure(args.site, side, "detect_topics = false\ndetect_language = false\n"
                  if side == "off" else "")
    return alternate(args.site, args.baseline, args.pairs)


if __name__ == "__main__":
    sys.exit(main())

"""run.fresh_pages: the page paths published with the signature they have now, still on
disk, channels aside; by passes in C, with the answer of a step per signature."""

from __future__ import annotations

import random
from types import SimpleNamespace
from typing import Any

from feedserver.build.run import fresh_pages


def reference(site: Any, manifest: dict[str, Any], missing: frozenset[str]) -> frozenset[str]:
    """The rule, one signature at a time (the code before)."""
    recorded, files = manifest["channels"], manifest["files"]
    slugs = {c.slug for c in site.feed_view().channels}
    return frozenset(key for key, sig in site.signatures.items()
                     if key not in slugs and recorded.get(key) == sig and key in files
                     and key not in missing)


def test_fresh_pages_follow_the_rule_on_random_sites() -> None:
    rng = random.Random(7)
    for _ in range(200):
        paths = [f"articles/a{n}/index.html" for n in range(rng.randint(0, 40))]
        slugs = [f"t{n}" for n in range(rng.randint(0, 5))]
        signatures = {key: f"s{rng.randint(0, 2)}" for key in paths + slugs}
        recorded = {key: f"s{rng.randint(0, 2)}" for key in signatures if rng.random() < 0.8}
        recorded |= {"articles/gone/index.html": "s0"}  # signed once, no longer planned
        files = {key: {} for key in signatures if rng.random() < 0.8}
        missing = frozenset(key for key in signatures if rng.random() < 0.1)
        site = SimpleNamespace(signatures=signatures, feed_view=lambda s=slugs: SimpleNamespace(
            channels=[SimpleNamespace(slug=slug) for slug in s]))
        manifest = {"channels": recorded, "files": files}
        assert fresh_pages(site, manifest, missing) == reference(site, manifest, missing)  # type: ignore[arg-type]


def test_a_page_is_fresh_only_when_signed_alike_published_and_on_disk() -> None:
    site = SimpleNamespace(
        signatures={"a/index.html": "1", "b/index.html": "2", "c/index.html": "3",
                    "d/index.html": "4", "all": "5"},
        feed_view=lambda: SimpleNamespace(channels=[SimpleNamespace(slug="all")]))
    manifest = {"channels": {"a/index.html": "1", "b/index.html": "other", "c/index.html": "3",
                             "d/index.html": "4", "all": "5"},
                "files": {"a/index.html": {}, "b/index.html": {}, "d/index.html": {}}}
    assert fresh_pages(site, manifest, frozenset({"d/index.html"})) == {"a/index.html"}  # type: ignore[arg-type]

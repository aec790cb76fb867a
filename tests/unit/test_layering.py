"""The web side does not load the build side (issue 13).

Every web worker imports :mod:`feedserver.web.app`; an app that only serves
the published folder must not pay for (nor expose) the feed renderers, the
parsers and the sanitizer.  Each check runs in a fresh interpreter, since this
test process has long imported everything.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from feedserver.build.run import BuildReport
from feedserver.config import Settings

# Libraries only the build uses: feed writers, parsers, the sanitizer, front matter, repair.
BUILD_LIBRARIES = ("feedgen", "feedparser", "lxml", "nh3", "markdown_it", "yaml", "ftfy")
BUILD_STAGES = ("feedserver.render", "feedserver.parse", "feedserver.build",
                "feedserver.validate", "feedserver.schedule")

PROBE = """
import json, sys
{setup}
print(json.dumps(sorted(sys.modules)))
"""


def loaded(setup: str) -> list[str]:
    """The modules a fresh interpreter holds after running ``setup``."""
    done = subprocess.run([sys.executable, "-c", PROBE.format(setup=setup)],
                          capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def build_side(modules: list[str]) -> list[str]:
    """The modules of ``modules`` that belong to the build, not to serving."""
    return [name for name in modules
            if name.split(".")[0] in BUILD_LIBRARIES
            or any(name == stage or name.startswith(stage + ".") for stage in BUILD_STAGES)]


def test_importing_the_web_app_loads_nothing_of_the_build() -> None:
    modules = loaded("import feedserver.web.app")
    assert "feedserver.web.app" in modules
    assert build_side(modules) == []


def test_an_app_over_a_built_site_loads_nothing_of_the_build(
        settings: Settings, build: Callable[..., BuildReport], tmp_path: Path) -> None:
    """Creating the app and serving every kind of answer (a feed, a page offered to a
    browser, a 404 page, a widget of an unknown channel, /healthz) stays on the web side."""
    build()
    (tmp_path / "settings.json").write_text(json.dumps({
        "output_dir": settings.output_dir, "base_url": settings.base_url,
        # The poll budget's database is under state_dir: the temporary one, not the
        # working folder's (where runs of this test added up to a 429).
        "state_dir": settings.state_dir, "site_title": settings.site_title}),
        encoding="utf-8")
    modules = loaded(f"""
from feedserver.config import Settings
from feedserver.web.app import create_app
values = json.loads(open({str(tmp_path / "settings.json")!r}, encoding="utf-8").read())
client = create_app({{"FEEDSERVER_SETTINGS": Settings(**values)}}).test_client()
assert client.get("/feed.rss").status_code == 200
assert client.get("/feed.rss", headers={{"Accept": "text/html"}}).mimetype == "text/html"
assert client.get("/no/such/").status_code == 404
assert client.get("/embed/no-such-channel.js").status_code == 200
assert client.get("/healthz").status_code == 200
""")
    assert "flask" in modules
    # Flask brings Jinja; the site's templates are compiled only by feedserver.render.
    assert build_side(modules) == []

"""After a publish: keep the exported nginx config current, then run the operator's hook.

Both are for what serves the output elsewhere (nginx replicas, a copy on other
hosts, a CDN), so neither may cost the build its publish: every failure is
logged and swallowed.  The builder never reloads nginx or copies files itself;
``post_publish`` is the operator's command for that (README "Deploying"), run
through the shell with the output folder in its environment:

* ``FEEDSERVER_OUTPUT_DIR``: the folder just published;
* ``FEEDSERVER_WRITTEN`` / ``FEEDSERVER_REMOVED``: how many files the publish
  wrote and removed (0 and 0: nothing changed, nothing to copy);
* ``FEEDSERVER_NGINX_CONF``: the ``nginx_conf`` file ('' when unset), and
  ``FEEDSERVER_NGINX_CHANGED``: 1 when this publish rewrote it (reload nginx).

The hook runs while the build still holds the build lock, so the next publish
cannot change the folder under a copy in progress; ``HOOK_TIMEOUT`` bounds it.
"""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path
from typing import Any

from feedserver.config import Settings
from feedserver.publish import nginx

log = logging.getLogger(__name__)
HOOK_TIMEOUT = 300  # seconds; a hook that hangs must not hold the build lock for good


def after_publish(settings: Settings, manifest: dict[str, Any] | None, written: int,
                  removed: int) -> bool | None:
    """Rewrite ``nginx_conf`` if its text changed, then run ``post_publish``.

    ``manifest`` is the one now live (None: read it from the output folder).
    Returns the hook's success (None when no hook is set).
    """
    changed = refresh_nginx(settings, manifest)
    if not settings.post_publish:
        return None
    env = {**os.environ, "FEEDSERVER_OUTPUT_DIR": str(Path(settings.output_dir).resolve()),
           "FEEDSERVER_WRITTEN": str(written), "FEEDSERVER_REMOVED": str(removed),
           "FEEDSERVER_NGINX_CONF": settings.nginx_conf,
           "FEEDSERVER_NGINX_CHANGED": "1" if changed else "0"}
    try:
        done = subprocess.run(settings.post_publish, shell=True, env=env,
                              stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=HOOK_TIMEOUT, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("post_publish hook failed to run: %s", exc)
        return False
    if done.returncode != 0:
        output = (done.stderr or done.stdout).decode("utf-8", "replace").strip()[-2000:]
        log.warning("post_publish hook exited with %d: %s", done.returncode, output)
        return False
    return True


def refresh_nginx(settings: Settings, manifest: dict[str, Any] | None) -> bool:
    """Write ``nginx_conf`` when its generated text changed; True when it was written."""
    if not settings.nginx_conf:
        return False
    try:
        return nginx.write(settings, Path(settings.nginx_conf), settings.nginx_listen, manifest)
    except Exception as exc:  # a side job: never the reason a publish fails
        log.warning("nginx_conf %s not written: %s", settings.nginx_conf, exc)
        return False

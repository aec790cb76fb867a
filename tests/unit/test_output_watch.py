"""The scheduler notices a lost output by its manifest, not by its folder."""

from __future__ import annotations

from pathlib import Path

from feedserver.config import Settings
from feedserver.publish.output import MANIFEST, STATUS
from feedserver.schedule.scheduler import OutputWatch


def test_a_folder_without_its_manifest_is_lost_once_per_run(tmp_path: Path) -> None:
    out = tmp_path / "public"
    watch = OutputWatch(Settings(output_dir=str(out)))
    assert not watch.lost(0)  # no build has succeeded: nothing to lose (no rebuild loop)
    (out / MANIFEST).parent.mkdir(parents=True)
    (out / MANIFEST).write_text("{}", encoding="utf-8")
    assert not watch.lost(1)
    (out / MANIFEST).unlink()  # deleted, then a late status write brings the folder back
    (out / STATUS).write_text("{}", encoding="utf-8")
    assert watch.lost(1)
    assert not watch.lost(1)  # asked once; the rebuild is on its way
    assert watch.lost(2)  # that build did not bring it back: ask again
    (out / MANIFEST).write_text("{}", encoding="utf-8")
    assert not watch.lost(3)

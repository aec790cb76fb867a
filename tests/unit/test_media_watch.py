"""The watcher wakes the scheduler, for a full scan, when a media file beside an article
changes (issue 20): between full scans the build reuses its last walk of the media files."""

from __future__ import annotations

from watchdog.events import (
    FileClosedEvent,
    FileClosedNoWriteEvent,
    FileDeletedEvent,
    FileMovedEvent,
    FileOpenedEvent,
)

from feedserver.schedule.watcher import Writes, _Handler


def test_a_media_file_written_deleted_or_moved_wakes_a_build() -> None:
    woken: list[str] = []
    writes = Writes(True, 2.0)
    writes.watching = True  # as Watcher.start leaves it
    handler = _Handler("/seeds", writes, woken.append)
    writes.changes()  # a new Writes asks for a first full scan
    assert writes.changes() == set()
    handler.on_any_event(FileClosedEvent("/seeds/posts/pic.png"))
    assert writes.changes() is None  # the next build walks the media files again
    handler.on_any_event(FileDeletedEvent("/seeds/posts/tour.mp3"))
    handler.on_any_event(FileMovedEvent("/seeds/posts/.slides.pdf.part", "/seeds/posts/s.pdf"))
    assert woken == ["posts/pic.png changed", "posts/tour.mp3 changed", "posts/s.pdf changed"]
    # Reads, hidden files, folders that are hidden and files that are not media: nothing.
    for event in (FileOpenedEvent("/seeds/posts/pic.png"),
                  FileClosedNoWriteEvent("/seeds/posts/pic.png"),
                  FileClosedEvent("/seeds/posts/.pic.png"),
                  FileClosedEvent("/seeds/.cache/pic.png"),
                  FileClosedEvent("/seeds/posts/notes.docx")):
        handler.on_any_event(event)
    assert len(woken) == 3

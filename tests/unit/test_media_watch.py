"""The watcher wakes the scheduler when a media file beside an article changes (issue 20)."""

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
    handler = _Handler("/seeds", Writes(True, 2.0), woken.append)
    handler.on_any_event(FileClosedEvent("/seeds/posts/pic.png"))
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

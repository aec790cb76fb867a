"""py3langid's model through a ready copy in the cache folder: the same detections, a
second load that never touches the shipped model, and no copy trusted that another user
could have written or that is damaged."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from py3langid.langid import LanguageIdentifier

from feedserver.build import language_model

SAMPLES = ("The grain train reached the port of Aktau on Tuesday after a week of delays.",
           "Le train de céréales est arrivé au port mardi après une semaine de retard.",
           "Зерновой поезд прибыл в порт во вторник после недели задержек.",
           "Астық пойызы аптаға созылған кідірістен кейін сейсенбіде портқа жетті.")


def copies(folder: Path) -> list[Path]:
    return sorted(folder.glob("py3langid-model-*.pickle"))


def shipped_model_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("the shipped model was loaded")

    monkeypatch.setattr(LanguageIdentifier, "from_model_file", classmethod(refuse))


def test_the_second_load_is_the_copy_and_detects_the_same(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = language_model.load(tmp_path / "cache")
    assert len(copies(tmp_path / "cache")) == 1
    shipped_model_refused(monkeypatch)
    second = language_model.load(tmp_path / "cache")
    assert second is not first
    for text in SAMPLES:
        assert second.classify(text) == first.classify(text)
    assert [second.classify(t)[0] for t in SAMPLES] == ["en", "fr", "ru", "kk"]


def test_a_copy_others_could_write_is_not_read(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "cache"
    language_model.load(folder)
    os.chmod(folder, 0o777)
    loads: list[str] = []
    real = LanguageIdentifier.from_model_file.__func__  # type: ignore[attr-defined]

    def counting(cls: type, *args: object, **kwargs: object) -> object:
        loads.append("shipped")
        return real(cls, *args, **kwargs)

    monkeypatch.setattr(LanguageIdentifier, "from_model_file", classmethod(counting))
    assert language_model.load(folder).classify(SAMPLES[0])[0] == "en"
    assert loads == ["shipped"]


def test_a_damaged_copy_is_passed_by_and_made_again(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "cache"
    language_model.load(folder)
    (copy,) = copies(folder)
    whole = copy.read_bytes()
    copy.write_bytes(whole[: len(whole) // 2])
    assert language_model.load(folder).classify(SAMPLES[1])[0] == "fr"
    assert copy.read_bytes() == whole  # written again, whole
    shipped_model_refused(monkeypatch)
    assert language_model.load(folder).classify(SAMPLES[2])[0] == "ru"


def test_a_folder_that_cannot_be_written_costs_nothing_but_time(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    assert language_model.load(blocked / "cache").classify(SAMPLES[0])[0] == "en"


def test_the_copy_is_read_without_holding_its_bytes_beside_the_model(tmp_path: Path) -> None:
    """Reading the whole copy and then unpickling it held both at once: 65 MB more than
    the model for a moment, in the process every build's workers fork from (the peak of
    a cold build's parent: 233 MiB RSS at 10,000 articles).  Read as a stream, only one
    array's bytes (37 MB) are ever held beside what the model keeps.  Counted by
    tracemalloc (NumPy reports its arrays to it), which, unlike a process's RSS, does not
    depend on what the allocator gives back."""
    import tracemalloc

    folder = tmp_path / "cache"
    language_model.load(folder)
    (copy,) = copies(folder)
    tracemalloc.start()
    try:
        model = language_model.load(folder)
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert model.classify(SAMPLES[0])[0] == "en"
    assert kept > 0.9 * copy.stat().st_size  # the model itself, loaded from the copy
    assert peak - kept < 0.7 * copy.stat().st_size, (peak - kept, copy.stat().st_size)

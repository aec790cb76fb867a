"""A files Pool's shares come back as files set aside in the output folder, read back
and removed once the Pool is done; a disk that refuses them leaves them as bytes."""

from __future__ import annotations

import pickle
import re
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import pytest

from feedserver.build import parallel
from feedserver.core.errors import PublishError
from feedserver.core.records import Rendered
from feedserver.publish.output import discard


def test_a_blob_set_aside_is_read_back_once_and_its_file_removed(tmp_path: Path) -> None:
    blobs = [pickle.dumps(["share", n]) for n in range(3)]
    kept: list[bytes | str] = [parallel.set_aside(blob, tmp_path) for blob in blobs]
    assert all(isinstance(k, str) and Path(k).parent == tmp_path for k in kept)
    assert all(Path(k).name.startswith(".") and k.endswith(".tmp") for k in kept)  # type: ignore[union-attr]
    assert parallel.read_back(kept) == [["share", 0], ["share", 1], ["share", 2]]
    assert kept == [] and list(tmp_path.iterdir()) == []


def test_a_folder_that_refuses_the_file_keeps_the_bytes(tmp_path: Path) -> None:
    blob = pickle.dumps({"a": 1})
    assert parallel.set_aside(blob, tmp_path / "missing") is blob
    assert parallel.read_back([blob]) == [{"a": 1}]


def test_the_files_pool_reads_its_shares_back_from_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "FILE_RUN", 3)
    sent: list[bytes | str] = []
    real = parallel.read_back

    def seen(kept: list[bytes | str]) -> object:
        sent.extend(kept)
        return real(kept)
    monkeypatch.setattr(parallel, "read_back", seen)
    when = datetime(2026, 1, 1, tzinfo=UTC)
    makers = [partial(Rendered, f"p/{n}.txt", b"body %d" % n, "text/plain", when)
              for n in range(10)]
    staged = parallel._pooled_files(parallel._Files(makers, tmp_path, {}), 2)
    assert sorted(p.path for p in staged) == [f"p/{n}.txt" for n in range(10)]
    assert len(sent) == 4 and all(isinstance(k, str) for k in sent)  # 4 shares, as files
    assert not [p for p in tmp_path.iterdir() if "share" in p.name]  # read and removed
    discard(staged)


def test_a_share_that_cannot_be_read_back_is_a_publish_error(tmp_path: Path) -> None:
    kept: list[bytes | str] = [parallel.set_aside(pickle.dumps(n), tmp_path) for n in range(3)]
    Path(kept[1]).unlink()  # type: ignore[arg-type]
    first, lost, last = parallel.read_back(kept)
    assert (first, last) == (0, 2) and isinstance(lost, PublishError)
    assert re.fullmatch(r"cannot read back .*feedserver-share.*; the previous output is "
                        r"unchanged", str(lost))
    assert list(tmp_path.iterdir()) == []


def test_a_lost_share_fails_the_pool_and_its_other_files_are_removed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "FILE_RUN", 3)
    real = parallel.read_back

    def losing(kept: list[bytes | str]) -> list[object]:
        Path(kept[2]).unlink()  # type: ignore[arg-type]
        return real(kept)
    monkeypatch.setattr(parallel, "read_back", losing)
    when = datetime(2026, 1, 1, tzinfo=UTC)
    makers = [partial(Rendered, f"p/{n}.txt", b"body %d" % n, "text/plain", when)
              for n in range(10)]
    with pytest.raises(PublishError, match="cannot read back"):
        parallel._pooled_files(parallel._Files(makers, tmp_path, {}), 2)
    left = sorted(p.name for p in tmp_path.rglob("*") if p.is_file())
    assert len(left) == 3  # the lost share's files alone, for the next build's recover()

"""The executor's paths and its warm item cache stage the bytes a plain render gives.

Sites come from the pure pipeline over a generated corpus (parse every file,
identities from a real ledger, assemble); the reference is
:func:`pipeline.render_channels` with no executor, a fresh item cache and one
process.  Staged files are read back from their temporary files and removed.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from benchmarks.corpus import generate
from feedserver.build import forkcost, forks
from feedserver.build import parallel as workers
from feedserver.build.assemble import assemble
from feedserver.build.codeversion import render_version
from feedserver.build.forks import shared
from feedserver.build.parallel import Executor, warm_cache
from feedserver.build.render_gate import Output, render_channels
from feedserver.build.run import parse_files
from feedserver.build.signatures import split
from feedserver.config import Settings, load_settings
from feedserver.core.records import Channel, SourceFile
from feedserver.identify.ledger import Ledger
from feedserver.publish.output import discard
from feedserver.render.feeds import ItemCache
from feedserver.render.formats import FORMATS, Finding, ReadBack
from feedserver.render.site import Site
from tests.conftest import NOW, ROOT


def settings_for(folder: Path, config: str | None = None) -> Settings:
    folder.mkdir(parents=True, exist_ok=True)
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    (folder / "config.toml").write_text(config or text, encoding="utf-8")
    return load_settings(folder / "config.toml", env={
        "FEEDSERVER_SEEDS_DIR": str(folder.parent / "seeds"),
        "FEEDSERVER_OUTPUT_DIR": str(folder / "out"),
        "FEEDSERVER_STATE_DIR": str(folder / "state")})


def make_site(settings: Settings) -> Site:
    """Every file parsed, identities from the site's ledger, the site assembled."""
    seeds = Path(settings.seeds_dir)
    files = sorted(p for p in seeds.rglob("*") if p.is_file())
    sources = [SourceFile(str(p.relative_to(seeds)), p.read_bytes(), p.stat().st_mtime)
               for p in files]
    parsed, _ = parse_files(sources, settings)
    Path(settings.state_dir).mkdir(parents=True, exist_ok=True)
    with Ledger(settings.ledger_file) as ledger:
        seen = {s.path: NOW for s in sources}
        stubs = {path: split(item, settings)[0] for path, item in parsed.items()}
        identities = ledger.reconcile(stubs, set(seen), seen, NOW)
    site, _ = assemble(parsed, identities, settings, NOW, render_version())
    return site


def plain(site: Site, channels: list[Channel]) -> dict[str, bytes]:
    """The reference: one process, a fresh item cache, no executor."""
    output = render_channels(site, channels)
    assert not output.problems
    return {f.path: f.body for f in output.files}


def staged(output: Output, out_dir: Path) -> dict[str, bytes]:
    """Every staged file (bodies and their .gz/.br) by output path; temp files removed."""
    found = {str(Path(target).relative_to(out_dir)): Path(tmp).read_bytes()
             for item in output.staged for tmp, target in item.staged}
    discard(output.staged)
    return found


def bodies(files: dict[str, bytes]) -> dict[str, bytes]:
    return {path: body for path, body in files.items() if not path.endswith((".gz", ".br"))}


def execute(settings: Settings, site: Site, channels: list[Channel], processes: int,
            cache: ItemCache | None = None) -> Output:
    out_dir = Path(settings.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return Executor(out_dir, {}, processes, cache)(site, channels)


@pytest.fixture
def corpus(tmp_path: Path) -> Settings:
    generate(tmp_path / "seeds", 120, seed=5)
    return settings_for(tmp_path / "site")


@pytest.fixture
def splits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many tasks each job shared with forks had (so a test knows it forked)."""
    calls: list[int] = []
    real = workers.shared
    monkeypatch.setattr(forkcost, "RESIDENT_MAX", 1 << 50)  # whatever this process's size

    def counting(count: int, *args: Any) -> Any:
        calls.append(count)
        return real(count, *args)

    monkeypatch.setattr(workers, "shared", counting)
    return calls


def some(site: Site, count: int) -> list[Channel]:
    """'all' and the biggest topic channels: an incremental build's kind of job."""
    topics = sorted(site.channels[1:], key=lambda c: (-len(c.articles), c.slug))
    return [site.channels[0], *topics[: count - 1]]


@pytest.mark.parametrize("processes", [1, 2])
def test_a_warm_cache_gives_fresh_bytes_across_an_edit(corpus: Settings, processes: int,
                                                      splits: list[int]) -> None:
    first = make_site(corpus)
    warm = warm_cache()
    channels = some(first, 4)
    out_dir = Path(corpus.output_dir)
    before = staged(execute(corpus, first, channels, processes, warm), out_dir)
    assert bodies(before) == plain(first, channels)
    assert len(warm) >= len({a.id for c in channels for a in c.articles}) * len(FORMATS)

    edited = first.channels[0].articles[0]  # the newest article: in 'all' and its topics
    old_item = ItemCache().get(FORMATS["rss"], edited, first.context)
    source = Path(corpus.seeds_dir) / edited.path
    source.write_text(source.read_text(encoding="utf-8")
                      + "\n\nA correction: the bridge opened in May.\n", encoding="utf-8")
    second = make_site(corpus)
    stale = [c for c in second.channels if c.slug == "all" or c.slug in edited.topics]
    after = staged(execute(corpus, second, stale, processes, warm), out_dir)
    assert bodies(after) == plain(second, stale)
    rss = after["feed.rss"]
    assert b"the bridge opened in May" in rss and old_item not in rss
    assert all(b"the bridge opened in May" in body for body in bodies(after).values())
    assert len(splits) == (2 if processes == 2 else 0)  # both jobs forked (or none did)


def test_a_process_too_big_to_fork_keeps_a_small_job(
        corpus: Settings, monkeypatch: pytest.MonkeyPatch, splits: list[int]) -> None:
    """A small job that forks in a small process stays in a big one (every process is
    big at a limit of one byte), with the same files; the sizes come from /proc."""
    site = make_site(corpus)
    channels = some(site, 4)
    out_dir = Path(corpus.output_dir)
    forked = staged(execute(corpus, site, channels, 2), out_dir)
    assert splits == [3 * len(channels)] and forkcost.resident() > 1 << 20
    monkeypatch.setattr(forkcost, "RESIDENT_MAX", 1)
    here = staged(execute(corpus, site, channels, 2), out_dir)
    assert splits == [3 * len(channels)]  # no second split
    assert here == forked and bodies(here) == plain(site, channels)


def test_in_process_split_and_pool_stage_the_same_files(
        corpus: Settings, monkeypatch: pytest.MonkeyPatch, splits: list[int]) -> None:
    site = make_site(corpus)
    channels = some(site, 24)
    out_dir = Path(corpus.output_dir)
    assert 3 * len(channels) > workers.SPLIT_MAX  # the Pool's share by default
    one = staged(execute(corpus, site, channels, 1), out_dir)
    pooled = staged(execute(corpus, site, channels, 2), out_dir)
    monkeypatch.setattr(workers, "SPLIT_MAX", 10_000)
    split_up = staged(execute(corpus, site, channels, 2, warm_cache()), out_dir)
    assert splits == [3 * len(channels)]  # the Pool's share, then the split's
    assert bodies(one) == plain(site, channels)
    assert len(one) > 3 * len(channels) and one == pooled == split_up
    assert not list(out_dir.rglob("*.tmp"))


def test_a_changed_context_never_gets_the_old_items(corpus: Settings, tmp_path: Path) -> None:
    first = make_site(corpus)
    config = (ROOT / "config.toml").read_text(encoding="utf-8")
    renamed = settings_for(tmp_path / "renamed",
                           config.replace('name = "Energy"', 'name = "Power and fuel"'))
    shutil.copytree(Path(corpus.state_dir), Path(renamed.state_dir))  # the same identities
    second = make_site(renamed)
    channels = [c for c in second.channels if c.slug in ("all", "energy")]
    assert first.context != second.context and any("energy" in a.topics
                                                   for a in channels[0].articles)
    warm = warm_cache()
    staged(execute(corpus, first, some(first, 4), 2, warm), Path(corpus.output_dir))
    files = bodies(staged(execute(renamed, second, channels, 2, warm),
                          Path(renamed.output_dir)))
    assert files == plain(second, channels)
    assert b'label="Power and fuel"' in files["feed.atom"]


def test_a_channel_failing_in_a_child_is_left_out_as_in_one_process(
        corpus: Settings, monkeypatch: pytest.MonkeyPatch, splits: list[int]) -> None:
    site = make_site(corpus)
    channels = some(site, 5)
    victim = channels[2].slug

    def broken(channel: Channel, body: bytes) -> ReadBack:
        if channel.slug == victim:
            return ReadBack([Finding("injected failure")])
        return real.check(channel, body)

    real = FORMATS["atom"]
    monkeypatch.setitem(FORMATS, "atom", replace(real, check=broken))
    results = []
    for processes in (1, 2):
        output = execute(corpus, site, channels, processes, warm_cache())
        results.append((output.failed, output.problems, staged(output, Path(corpus.output_dir))))
    assert results[0] == results[1] and splits == [3 * len(channels)]
    failed, problems, files = results[0]
    assert failed == {victim} and [p.reason for p in problems] == ["injected failure"]
    assert not any(f"topics/{victim}/" in path for path in files)
    assert len(bodies(files)) == 3 * (len(channels) - 1)
    assert not list(Path(corpus.output_dir).rglob("*.tmp"))


def test_shared_tasks_come_back_whole_and_in_order() -> None:
    parent = os.getpid()
    results = shared(40, lambda n: (n * n, os.getpid()), 2, lambda done: None)
    assert [square for square, _ in results] == [n * n for n in range(40)]
    helpers = {pid for _, pid in results} - {parent}
    for pid in helpers:
        with pytest.raises(ProcessLookupError):  # reaped: not even a zombie
            os.kill(pid, 0)


def test_a_task_taken_by_a_killed_child_is_run_again(tmp_path: Path) -> None:
    parent, died = os.getpid(), tmp_path / "died"

    def run(number: int) -> int:
        if os.getpid() != parent:
            died.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        deadline = time.monotonic() + 10  # the parent's first task waits for the child
        while not died.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        return number + 100

    assert shared(6, run, 2, lambda done: None) == [n + 100 for n in range(6)]
    assert died.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(int(died.read_text()), 0)


def test_a_stuck_child_is_killed_and_its_task_run_here(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parent, stuck = os.getpid(), tmp_path / "stuck"
    monkeypatch.setattr(forks, "STUCK", 0.5)

    def run(number: int) -> int:
        if os.getpid() != parent:
            stuck.write_text(str(os.getpid()))
            time.sleep(60)  # a lock that never comes
        deadline = time.monotonic() + 10  # the parent's first task waits for the child
        while not stuck.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        return -number

    started = time.monotonic()
    assert shared(4, run, 2, lambda done: None) == [0, -1, -2, -3]
    assert time.monotonic() - started < 30
    with pytest.raises(ProcessLookupError):
        os.kill(int(stuck.read_text()), 0)


def test_an_error_undoes_everything_done_and_leaves_no_child(tmp_path: Path) -> None:
    parent, undone = os.getpid(), []

    def run(number: int) -> int:
        (tmp_path / f"pid-{os.getpid()}").touch()
        deadline = time.monotonic() + 10
        if os.getpid() == parent:  # fails, once the child has done a task
            (tmp_path / "parent-took-one").touch()
            while not list(tmp_path.glob("done-*")) and time.monotonic() < deadline:
                time.sleep(0.01)
            raise ValueError("disk on fire")
        # A child scheduled first could otherwise take all 8 before the parent took one
        # (seen on a loaded machine): then nothing raises.
        while not (tmp_path / "parent-took-one").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        (tmp_path / f"done-{number}").touch()
        return number

    with pytest.raises(ValueError, match="disk on fire"):
        shared(8, run, 2, undone.extend)
    done = {int(p.name[5:]) for p in tmp_path.glob("done-*")}
    assert sorted(undone) == sorted(done) and 1 <= len(done) < 8
    children = {int(p.name[4:]) for p in tmp_path.glob("pid-*")} - {parent}
    for pid in children:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_an_evicted_item_is_rendered_again_the_same(corpus: Settings) -> None:
    site = make_site(corpus)
    fmt, articles = FORMATS["atom"], site.channels[0].articles[:5]
    small, fresh = ItemCache(limit=2), ItemCache()
    first = [small.get(fmt, a, site.context) for a in articles]
    assert len(small) == 2
    again = [small.get(fmt, a, site.context) for a in articles]
    assert first == again == [fresh.get(fmt, a, site.context) for a in articles]

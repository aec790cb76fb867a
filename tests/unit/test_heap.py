"""The build shell's hold on the garbage collector (:mod:`feedserver.build.heap`).

The policy is a whole process's, so each case runs in a fresh interpreter: the test
process's own heap is never frozen by these tests.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import ROOT


def run(script: str) -> None:
    """Run ``script`` in a fresh Python; its asserts are the test's."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]


def test_holds_nest_and_the_last_release_thaws_the_heap() -> None:
    run("""
        import gc
        from feedserver.build import heap

        assert gc.get_freeze_count() == 0
        heap.hold()  # the presence check's child
        with heap.frozen():  # render workers forked while it lives
            assert gc.get_freeze_count() > 0
        assert gc.get_freeze_count() > 0, "thawed under a child still alive"
        heap.release()
        assert gc.get_freeze_count() == 0
        heap.release()  # once too often: harmless
        assert gc.get_freeze_count() == 0
    """)


def test_a_settled_heap_stays_frozen_and_is_collected_when_it_has_grown() -> None:
    run("""
        import gc, weakref
        from feedserver.build import heap

        class Node:
            pass

        def cycle():
            node = Node()
            node.me = node  # only the collector frees it
            return node

        kept = [object() for _ in range(1000)]
        assert heap.settle() is True  # the first settle collects, then freezes
        assert gc.get_freeze_count() > 0

        dropped = cycle()
        gone = weakref.ref(dropped)
        assert heap.settle() is False  # little grew: frozen, not collected
        with heap.frozen():
            pass
        assert gc.get_freeze_count() > 0, "a fork's end thawed a settled heap"
        del dropped
        gc.collect()
        assert gone() is not None, "frozen: no collection reaches it"

        grown = [[n] for n in range(gc.get_freeze_count())]  # well past GROWTH
        assert heap.settle() is True
        assert gone() is None, "the full collection freed the dropped cycle"
        assert gc.get_freeze_count() > 0
        del grown, kept
    """)


def test_a_settle_with_a_child_alive_only_freezes() -> None:
    run("""
        import gc
        from feedserver.build import heap

        heap.hold()
        assert heap.settle() is False
        heap.release()
        assert gc.get_freeze_count() == 0  # not settled: thawed with the child
    """)


def with_site(tmp_path: Path, body: str) -> str:
    """``body`` after a prelude that copies the bundled seeds into a site at ``tmp_path``
    and loads its ``settings``."""
    return textwrap.dedent(f"""
        import gc, shutil, threading, time
        from pathlib import Path
        from feedserver.config import load_settings

        site = Path({str(tmp_path)!r})
        shutil.copytree(Path("seeds"), site / "seeds")
        (site / "config.toml").write_text(
            'seeds_dir = "seeds"\\noutput_dir = "public"\\nstate_dir = "state"\\n')
        settings = load_settings(site / "config.toml", env={{}})
    """) + textwrap.dedent(body)


def test_a_refresher_told_to_settle_freezes_after_each_run(tmp_path: Path) -> None:
    run(with_site(tmp_path, """
        from feedserver.schedule.scheduler import Refresher

        job = Refresher(settings)
        assert job.run("test").report is not None
        assert gc.get_freeze_count() == 0, "a refresher not told to settle froze its process"

        job = Refresher(settings, settle_heap=True)
        outcome = job.run("test")
        assert outcome.report is not None and outcome.report.articles >= 1
        assert gc.get_freeze_count() > 0
        assert job.run("test").report is not None
        assert gc.get_freeze_count() > 0
        assert (site / "public" / "feed.atom").exists()
    """))


def test_only_a_scheduler_that_is_its_process_main_work_settles(tmp_path: Path) -> None:
    """``feedserver watch`` and serve's scheduler process settle; a scheduler run in a
    thread (the tests') leaves its process's heap alone."""
    run(with_site(tmp_path, """
        from feedserver.schedule.scheduler import run_forever

        built = site / "public" / "feed.atom"

        def stop_when_built(stop):
            deadline = time.monotonic() + 60
            while not built.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.5)  # the run ends after its publish
            stop.set()

        stop = threading.Event()
        helper = threading.Thread(target=stop_when_built, args=(stop,))
        helper.start()
        owner = threading.Thread(target=run_forever, args=(settings,),
                                 kwargs={"stop": stop, "events": False})
        owner.start()
        owner.join(90)
        helper.join()
        assert built.exists() and gc.get_freeze_count() == 0

        built.unlink()
        stop = threading.Event()
        helper = threading.Thread(target=stop_when_built, args=(stop,))
        helper.start()
        run_forever(settings, stop=stop, events=False)  # this process's main work
        helper.join()
        assert built.exists() and gc.get_freeze_count() > 0
    """))

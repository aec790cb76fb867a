"""A generated corpus of hostile files, each with the outcome feedserver promises.

Every case writes its file(s) into a seeds folder and names one outcome:

- ``published``: appears in the feeds as written;
- ``cleaned``: appears after cleaning (decoded, stripped, sanitized, cut);
- ``skipped``: not published, and a problem names the file and the reason;
- ``ignored``: not published and silently passed over (not an article).

``python -m tests.hostile_corpus DIR`` writes the corpus into DIR for manual runs.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PUBLISHED, CLEANED, SKIPPED, IGNORED = "published", "cleaned", "skipped", "ignored"
BODY = "A plain paragraph of text that is long enough to be an article body."


@dataclass(frozen=True)
class Case:
    """One hostile input: where it goes, how it is made, what must happen."""

    name: str
    family: str
    path: str
    make: Callable[[Path], None]
    outcome: str
    title: str = ""  # published/cleaned: the title readers see; ignored: must not appear
    reason: str = ""  # for skipped: part of the problem's reason
    absent: tuple[str, ...] = ()  # strings that must appear in no feed


def _bytes(data: bytes) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return make


def _text(text: str, encoding: str = "utf-8") -> Callable[[Path], None]:
    return _bytes(text.encode(encoding, "surrogatepass"))


def _md(front: str, body: str = BODY) -> Callable[[Path], None]:
    return _text(f"---\n{front}\n---\n{body}\n")


def _symlink(target: str) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(target)
    return make


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _socket(path: Path) -> None:
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(path))
    finally:
        sock.close()


def _loop(path: Path) -> None:
    path.symlink_to(path.name)  # a link to itself


def _dir_loop(path: Path) -> None:
    path.mkdir(parents=True)
    (path / "up").symlink_to("..")
    (path / "inside.txt").write_text("Inside the looping folder\n\n" + BODY)


def _deep(path: Path) -> None:
    folder = path
    for level in range(100):
        folder = folder / f"d{level}"
    folder.mkdir(parents=True)
    (folder / "deep.txt").write_text("A hundred folders deep\n\n" + BODY)


def _folder_named_like_article(path: Path) -> None:
    path.mkdir(parents=True)
    (path / "real.txt").write_text("The real article in a folder named .md\n\n" + BODY)


def _big(size: int, title: str) -> Callable[[Path], None]:
    para = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do. " * 15) + "\n\n"
    return _text(title + "\n\n" + para * (size // len(para) + 1))


ALIAS_BOMB = "\n".join(
    ["a: &a [x, x, x, x, x, x, x, x, x]"]
    + [f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
       f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]"
       for i in range(8)]
    + ["tags: *i", "title: Alias bomb in front matter"])

CASES: list[Case] = [
    # -- encodings --------------------------------------------------------------------------
    Case("utf8", "encoding", "enc/utf8.txt", _text("Grüße aus Köln\n\n" + BODY), PUBLISHED,
         "Grüße aus Köln"),
    Case("utf8-bom", "encoding", "enc/utf8bom.txt", _text("\ufeffBOM title\n\n" + BODY),
         CLEANED, "BOM title"),
    Case("utf16-bom", "encoding", "enc/utf16.txt",
         _text("Заголовок UTF-16\n\n" + BODY, "utf-16"), CLEANED, "Заголовок UTF-16"),
    Case("cp1251", "encoding", "enc/cp1251.txt", _text(
        "Новости Казахстана сегодня\n\nПрезидент встретился с министрами в Астане и обсудил "
        "экономику, торговлю и транспорт.\n", "cp1251"), CLEANED, "Новости Казахстана сегодня"),
    Case("latin1", "encoding", "enc/latin1.txt", _text(
        "Élections à Genève\n\nLe résultat des élections a été annoncé à Genève très tôt.\n",
        "latin-1"), CLEANED, "Élections à Genève"),
    Case("invalid-utf8", "encoding", "enc/invalid.txt", _bytes(
        "Café crème und Grüße\n\n".encode() + b"Broken \xff\xfe byte in a sentence. " +
        BODY.encode()), CLEANED, "Café crème und Grüße"),
    Case("cr-only", "encoding", "enc/cr.txt", _text("Old Mac line endings\r\r" + BODY + "\r"),
         CLEANED, "Old Mac line endings"),
    Case("crlf", "encoding", "enc/crlf.txt", _text("Windows line endings\r\n\r\n" + BODY),
         CLEANED, "Windows line endings"),
    Case("u2028", "encoding", "enc/u2028.txt",
         _text("Line\u2028separator title\u2029\u2029" + BODY), CLEANED, "Line"),
    Case("bidi", "encoding", "enc/bidi.txt",
         _text("Invoice \u202egnp.exe\u202c paid\n\n" + BODY), CLEANED, "Invoice gnp.exe paid",
         absent=("\u202e",)),
    # -- characters XML forbids -----------------------------------------------------------
    Case("c0-title-body", "xml-chars", "xml/c0.txt",
         _text("Con\x00trol\x01 chars\x1f here\n\nBody \x07with\x0b bells\ufffe\uffff.\n"),
         CLEANED, "Control chars here", absent=("\x00", "\x07", "\ufffe")),
    Case("lone-surrogate", "xml-chars", "xml/surrogate.txt",
         _bytes(b"Lone \xed\xa0\x80 surrogate\n\n" + BODY.encode()), CLEANED,
         "Lone surrogate"),
    Case("front-matter-controls", "xml-chars", "xml/fm.md",
         _md("title: \"Tab\\x01 and \\x00 null\"\nauthor: \"Ann\\x02\"\ntags: [\"to\\x03pic\"]"),
         CLEANED, "Tab and null"),
    Case("control-in-filename", "xml-chars", "xml/bad\x01name.txt",
         _text("File name with a control character\n\n" + BODY), PUBLISHED,
         "File name with a control character"),
    # -- degenerate files -----------------------------------------------------------------
    Case("empty", "degenerate", "deg/empty.txt", _bytes(b""), SKIPPED, reason="empty article"),
    Case("whitespace", "degenerate", "deg/blank.txt", _bytes(b" \n\t\n\xc2\xa0\n"), SKIPPED,
         reason="empty article"),
    Case("title-only", "degenerate", "deg/title.txt", _text("Only a title here\n"), PUBLISHED,
         "Only a title here"),
    Case("no-newline", "degenerate", "deg/nonl.txt", _text("No newline at all"), PUBLISHED,
         "No newline at all"),
    Case("png", "degenerate", "deg/image.txt", _bytes(
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 40), SKIPPED,
         reason="binary"),
    Case("5mb", "degenerate", "deg/five.txt", _big(5_000_000, "A five megabyte article"),
         PUBLISHED, "A five megabyte article"),
    Case("50mb", "degenerate", "deg/fifty.txt", _big(50_000_000, "Fifty"), SKIPPED,
         reason="the limit is"),
    Case("100kb-title", "degenerate", "deg/longtitle.txt", _text("Long " * 20_000 + "\n\nBody\n"),
         CLEANED, ("Long " * 60).strip() + "…"),
    # -- hostile HTML and Markdown --------------------------------------------------------
    Case("script", "html", "html/script.md", _md(
        "title: Script tags", "<script>alert(1)</script><iframe src=x></iframe>"
        "<img src=x onerror=alert(1)><a href='javascript:alert(1)'>j</a>"
        "<a href='vbscript:msgbox(1)'>v</a><a href='data:text/html,<b>x</b>'>d</a>"
        "<p onmouseover=alert(1)>hover</p>"), CLEANED, "Script tags",
         absent=("<script", "onerror", "javascript:", "vbscript:", "data:text", "onmouseover",
                 "<iframe")),
    Case("title-markup", "html", "html/title.md", _md(
        "title: \"<img src=x onerror=alert(1)> ]]> & friends\""), PUBLISHED,
         "]]> & friends"),
    Case("doctype-entities", "html", "html/entity.md", _md(
        "title: Entity bomb", '<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;">]>'
        "&b;&b;&b; <![CDATA[ x ]]> end"), CLEANED, "Entity bomb",
         absent=("<!ENTITY", "<!DOCTYPE")),
    Case("looks-like-tags", "html", "html/verizon.txt",
         _text("Deal with < Verizon > closes\n\nIt holds if a<b and b>c.\n"), PUBLISHED,
         "Deal with < Verizon > closes"),
    Case("quadratic-md", "html", "html/quadratic.md",
         _text("# Quadratic emphasis\n\n" + "*a" * 40_000 + "\n\n" + "[" * 40_000 + "\n"),
         CLEANED, "Quadratic emphasis"),
    Case("deep-blockquote", "html", "html/nest.md",
         _text("# Deeply nested quotes\n\n" + "> " * 20_000 + "x\n"), CLEANED,
         "Deeply nested quotes"),
    # -- front matter ---------------------------------------------------------------------
    Case("bad-yaml", "front-matter", "fm/yaml.md", _md("title: [unclosed"), SKIPPED,
         reason="invalid YAML"),
    Case("bad-toml", "front-matter", "fm/toml.md", _text('+++\ntitle = "x\n+++\nbody\n'),
         SKIPPED, reason="invalid TOML"),
    Case("unclosed", "front-matter", "fm/unclosed.md", _text("---\ntitle: Unclosed\n\nbody\n"),
         SKIPPED, reason="never closed"),
    Case("tabs", "front-matter", "fm/tabs.md", _md("title: Tabs\n\tauthor: x"), SKIPPED,
         reason="invalid YAML"),
    Case("wrong-types", "front-matter", "fm/types.md",
         _md("title: Wrong types\ndate: [1, 2]\ntags: 7"), CLEANED, "Wrong types"),
    Case("alias-bomb", "front-matter", "fm/alias.md", _md(ALIAS_BOMB), CLEANED,
         "Alias bomb in front matter"),
    Case("python-tag", "front-matter", "fm/python.md", _md(
        "title: !!python/object/apply:os.system ['touch /tmp/feedserver-pwned']"),
         SKIPPED, reason="invalid YAML"),
    Case("10k-tags", "front-matter", "fm/tags.md", _md(
        "title: Ten thousand tags\ntags: [" + ", ".join(f"t{i}" for i in range(10_000)) + "]"),
         CLEANED, "Ten thousand tags"),
    Case("path-tags", "front-matter", "fm/pathtags.md", _md(
        "title: Tags that look like paths\ntags: ['../../etc/passwd', CON, a/b, "
        "\"zero\\u200bwidth\", \"\\u200b\", שלום, \"\\u202eevil\"]"), CLEANED,
         "Tags that look like paths"),
    # -- dates ----------------------------------------------------------------------------
    Case("invalid-date", "dates", "dates/feb30.md", _md("title: February 30\ndate: 2024-02-30"),
         CLEANED, "February 30"),
    Case("far-past", "dates", "dates/past.md", _md("title: Far past\ndate: 1901-01-01"),
         PUBLISHED, "Far past"),
    Case("far-future", "dates", "dates/future.md", _md("title: Far future\ndate: 2999-01-01"),
         IGNORED, "Far future"),
    Case("out-of-range", "dates", "dates/range.md",
         _md("title: Out of range\ndate: 9999-12-31T23:59-23:59"), CLEANED, "Out of range"),
    Case("naive", "dates", "dates/naive.md", _md("title: Naive date\ndate: 2020-05-05 10:00"),
         PUBLISHED, "Naive date"),
    Case("aware", "dates", "dates/aware.md",
         _md("title: Aware date\ndate: 2020-05-05T10:00:00+05:00"), PUBLISHED, "Aware date"),
    # -- duplicates -----------------------------------------------------------------------
    Case("same-title-1", "duplicates", "dup/a/same.txt", _text("Same title twice\n\nOne.\n"),
         PUBLISHED, "Same title twice"),
    Case("same-title-2", "duplicates", "dup/b/same.txt", _text("Same title twice\n\nTwo.\n"),
         PUBLISHED, "Same title twice"),
    Case("same-slug-1", "duplicates", "dup/a/slug.md", _md("title: Slug one\nslug: shared"),
         PUBLISHED, "Slug one"),
    Case("same-slug-2", "duplicates", "dup/b/slug.md", _md("title: Slug two\nslug: shared"),
         PUBLISHED, "Slug two"),
    Case("nfc", "duplicates", "dup/caf\u00e9.txt", _text("NFC named file\n\nx\n"), PUBLISHED,
         "NFC named file"),
    Case("nfd", "duplicates", "dup/cafe\u0301.txt", _text("NFD named file\n\nx\n"), PUBLISHED,
         "NFD named file"),
    Case("case-1", "duplicates", "dup/Case.txt", _text("Upper case name\n\nx\n"), PUBLISHED,
         "Upper case name"),
    Case("case-2", "duplicates", "dup/case.txt", _text("Lower case name\n\nx\n"), PUBLISHED,
         "Lower case name"),
    # -- the file system ------------------------------------------------------------------
    Case("link-passwd", "filesystem", "fs/passwd.txt", _symlink("/etc/passwd"), SKIPPED,
         reason="symbolic link out of the seeds folder"),
    Case("link-environ", "filesystem", "fs/environ.txt", _symlink("/proc/self/environ"),
         SKIPPED, reason="symbolic link out of the seeds folder"),
    Case("link-zero", "filesystem", "fs/zero.txt", _symlink("/dev/zero"), SKIPPED,
         reason="symbolic link out of the seeds folder"),
    Case("link-loop", "filesystem", "fs/loop.txt", _loop, SKIPPED, reason="cannot stat"),
    Case("link-inside", "filesystem", "fs/inside-link.txt", _symlink("../enc/utf8.txt"),
         IGNORED),
    Case("dir-loop", "filesystem", "fs/dirloop", _dir_loop, PUBLISHED,
         "Inside the looping folder"),
    Case("fifo", "filesystem", "fs/pipe.txt", _fifo, IGNORED),
    Case("socket", "filesystem", "fs/sock.txt", _socket, IGNORED),
    Case("folder-like-article", "filesystem", "fs/folder.md", _folder_named_like_article,
         PUBLISHED, "The real article in a folder named .md"),
    Case("deep", "filesystem", "fs/deep", _deep, PUBLISHED, "A hundred folders deep"),
    Case("newline-name", "filesystem", "fs/new\nline.txt", _text("Newline in name\n\nx\n"),
         PUBLISHED, "Newline in name"),
    Case("swap", "filesystem", "fs/.story.txt.swp", _text("Swap file\n\nx\n"), IGNORED,
         "Swap file"),
    Case("backup", "filesystem", "fs/story.txt~", _text("Backup file\n\nx\n"), IGNORED,
         "Backup file"),
    Case("emacs-lock", "filesystem", "fs/.#story.txt", _text("Lock file\n\nx\n"), IGNORED,
         "Lock file"),
    Case("emacs-auto", "filesystem", "fs/#story.txt#", _text("Autosave file\n\nx\n"),
         IGNORED, "Autosave file"),
    Case("hidden-file", "filesystem", "fs/.hidden.txt", _text("Hidden file\n\nx\n"), IGNORED,
         "Hidden file"),
    Case("hidden-folder", "filesystem", "fs/.git/HEAD.txt", _text("Hidden folder\n\nx\n"),
         IGNORED, "Hidden folder"),
]


def write_bad_name(seeds: Path) -> str:
    """A file whose name is not valid UTF-8; returns how the problem names it."""
    raw = os.fsencode(seeds / "fs") + b"/bad-\xff-name.txt"
    os.makedirs(os.fsencode(seeds / "fs"), exist_ok=True)
    with open(raw, "wb") as handle:
        handle.write(b"Bad name\n\nx\n")
    return ascii(os.path.relpath(os.fsdecode(raw), seeds))


def write_corpus(seeds: Path) -> list[Case]:
    """Write every case into ``seeds`` (which may already hold other articles)."""
    for case in CASES:
        case.make(seeds / case.path)
    return CASES


if __name__ == "__main__":
    target = Path(sys.argv[1])
    write_corpus(target)
    write_bad_name(target)
    print(f"wrote {len(CASES) + 1} hostile cases into {target}")

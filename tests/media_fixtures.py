"""Tiny valid media files written from bytes, and a seeds folder with an article using them.

The tests make their own binary fixtures instead of committing them: a PNG
(zlib and CRCs from the standard library), an MP3 of whole MPEG-1 Layer III
frames (128 kbit/s, 44.1 kHz: mutagen reads its duration from them) and a
one-page PDF.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

FRAME = 417  # bytes of one 128 kbit/s, 44.1 kHz MPEG-1 Layer III frame without padding
FRAME_SECONDS = 1152 / 44100


def png(width: int = 6, height: int = 4, rgb: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    """A ``width`` x ``height`` truecolour PNG of one colour."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    row = b"\x00" + bytes(rgb) * width
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(row * height)) + chunk(b"IEND", b""))


def mp3(seconds: float = 3.0) -> bytes:
    """Silent-ish MPEG audio of about ``seconds`` (whole frames)."""
    header = bytes([0xFF, 0xFB, 0x90, 0x64])
    frames = max(1, round(seconds / FRAME_SECONDS))
    return (header + b"\x00" * (FRAME - 4)) * frames


def pdf(text: str = "Slides") -> bytes:
    """A one-page PDF with a correct cross-reference table."""
    stream = f"BT /F1 24 Tf 20 40 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 100] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream
        + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += (f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
            .encode())
    return bytes(out)


ARTICLE = """---
title: Solar farm tour
date: 2026-10-02T09:00:00Z
summary: A tour of the new solar farm, with pictures and the recording.
topics: [Energy]
image: photos/panels.png
image_alt: Rows of panels
audio: tour.mp3
attachments:
  - url: slides.pdf
    title: Slides of the tour
---
We walked the rows. ![A panel](photos/panels.png)

Read the [follow-up](follow-up.md) too.
"""

FOLLOW_UP = """---
title: Solar farm follow-up
date: 2026-10-03T09:00:00Z
topics: [Energy]
---
What happened next.
"""


def media_seeds(seeds: Path) -> dict[str, bytes]:
    """Write the media article, its follow-up and their files into ``seeds/posts/``;
    returns the media files written (path in seeds -> bytes)."""
    folder = seeds / "posts"
    (folder / "photos").mkdir(parents=True, exist_ok=True)
    files = {"posts/photos/panels.png": png(), "posts/tour.mp3": mp3(),
             "posts/slides.pdf": pdf()}
    for rel, body in files.items():
        (seeds / rel).write_bytes(body)
    (folder / "solar-tour.md").write_text(ARTICLE, encoding="utf-8")
    (folder / "follow-up.md").write_text(FOLLOW_UP, encoding="utf-8")
    return files

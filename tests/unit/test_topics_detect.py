"""Automatic topics and languages from an article's text: what is found, what is not."""

from __future__ import annotations

from feedserver.config import Settings, TopicRule
from feedserver.core.records import Parsed
from feedserver.parse import language
from feedserver.topics import detect
from feedserver.topics.rules import assign_all, catalog
from tests.conftest import ROOT, SEED


def seed() -> tuple[str, str]:
    title, _, text = (ROOT / "seeds" / SEED).read_text(encoding="utf-8").partition("\n")
    return title, text


def parsed(title: str, text: str, topics: tuple[str, ...] = ()) -> Parsed:
    return Parsed(path="a.txt", title=title, fingerprint="f", content_html="", summary="",
                  text=text, topics=topics)


def kinds(found: tuple[detect.Found, ...]) -> dict[str, str]:
    return {slug: kind for slug, _, kind in found}


def test_the_seed_is_about_kazakhstan_and_russia_not_a_passing_place() -> None:
    found = kinds(detect.detect(*seed()))
    assert found["kazakhstan"] == found["russia"] == "place"
    # Named once or twice in passing: Uzbekistan (twice), Astana, Moscow, Kostanay.
    for passing in ("uzbekistan", "astana", "moscow", "kostanay", "izvestia"):
        assert passing not in found
    assert found.get("kassym-jomart-tokayev") == "person"  # named eight times


def test_russian_and_kazakh_names_with_case_endings_and_adjectives() -> None:
    russian = detect.detect("Переговоры",
                            "Президент Казахстана прилетел в Москву и Россию. Казахстанская и "
                            "российская стороны подписали соглашение. В Казахстане ждут "
                            "инвестиций из России.")
    assert kinds(russian) == {"kazakhstan": "place", "russia": "place"}
    kazakh = detect.detect("Қазақстан мен Ресей", "Қазақстанның экспорты өсті. Ресейлік "
                           "компаниялар Қазақстанда зауыт салады. Ресей тарапы келісті.")
    assert set(kinds(kazakh)) == {"kazakhstan", "russia"}


def test_one_passing_mention_makes_no_topic() -> None:
    text = ("The orchestra played Beethoven in Vienna on Friday. The concert hall was full. "
            "The conductor thanked the audience and the musicians.")
    assert detect.detect("A night at the concert hall", text) == ()


def test_case_matters_for_names_and_acronyms() -> None:
    text = "We ate turkey and china plates. Tell us about it, we said to us all. Turkey? No."
    assert "china" not in kinds(detect.detect("Dinner", text))
    assert "united-states" not in kinds(detect.detect("Dinner", text))


def test_organisations_people_and_phrases_need_repeats() -> None:
    text = ("The European Central Bank raised rates. Analysts at the European Central Bank "
            "said wind farm output fell. The European Central Bank meets again in June. "
            "Maria Lopez, an economist, said the wind farm sector would recover. Lopez added "
            "that a new wind farm opened. Lopez expects more.")
    found = kinds(detect.detect("Rates rise", text))
    assert found["european-central-bank"] == "organisation"
    assert found["maria-lopez"] == "person"
    assert found["wind-farm"] == "subject"


def test_detection_is_deterministic() -> None:
    assert detect.detect(*seed()) == detect.detect(*seed())


def test_config_renames_merges_and_bans_detected_topics() -> None:
    title, text = seed()
    rules = (TopicRule(slug="kz", name="Kazakhstan", also=("Qazaqstan",)),
             TopicRule(slug="rf", name="RF", also=("Russia",)))
    settings = Settings(topics=rules, auto_topics=False,
                        auto_topics_exclude=("Kassym-Jomart Tokayev",))
    slugs, _, found = assign_all(parsed(title, text), settings)
    assert {"kz", "rf"} <= set(slugs)
    assert "kazakhstan" not in slugs and "russia" not in slugs
    assert "kassym-jomart-tokayev" not in slugs
    assert kinds(found)["kz"] == "place"
    topics = catalog(settings, {}, {slug: (name, kind) for slug, name, kind in found})
    assert topics["kz"].name == "Kazakhstan" and topics["kz"].kind == "place"


def test_detection_can_be_switched_off() -> None:
    slugs, _, found = assign_all(parsed(*seed()), Settings(detect_topics=False))
    assert slugs == () and found == ()


def test_languages() -> None:
    assert language.detect("Казахстан и Россия", "Президенты обсудили торговлю, транзит "
                           "газа и строительство новой электростанции.") == "ru"
    assert language.detect("Қазақстан мен Ресей", "Қазақстанның экспорты өсті, ресейлік "
                           "компаниялар жаңа зауыттар салуға ниетті.") == "kk"
    assert language.detect(*seed()) == "en"
    assert language.detect("Hi", "ok") is None  # too little text to tell
    assert language.tag("pt_BR") == "pt-BR"
    assert language.tag("Russian language") is None

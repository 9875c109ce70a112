"""Template rendering, pure: the locale a recipient gets, the sandbox, autoescape in HTML only, strict variables, and
the index members that name a schedule call's ids."""

from __future__ import annotations

import pytest

from zsched.engine import rendering
from zsched.engine.templates import ids_of, uses_of
from zsched.errors import FieldError, TemplateRenderError
from zsched.models import Contact, Template, TemplateVariant, ms_to_datetime


def template(*locales: str, fallback: str = "en", title: str = "{{ x }}") -> Template:
    variants = {tag: TemplateVariant(title=f"{tag}: {title}", message="m", html="<i>{{ x }}</i>") for tag in locales}
    return Template(name="t", version=1, fallback_locale=fallback, variants=variants, created_at=ms_to_datetime(0))


@pytest.mark.parametrize(
    ("locale", "chosen"),
    [
        ("pt-BR", "pt-BR"),
        ("PT-br", "pt-BR"),
        ("pt", "pt"),
        ("pt-PT", "pt"),
        ("zh-Hant-TW", "zh-Hant"),
        ("zh", "zh-Hant"),
        ("sv", "en"),
        (None, "en"),
    ],
)
def test_the_variant_is_the_closest_locale_or_the_fallback(locale: str | None, chosen: str) -> None:
    assert rendering.choose_locale(template("en", "pt", "pt-BR", "zh-Hant"), locale) == chosen


def test_html_is_autoescaped_and_text_is_not() -> None:
    got = rendering.render(template("en"), {"x": "<b>&"}, recipient="r", contact=Contact(recipient="r"))
    assert (got.title, got.html) == ("en: <b>&", "<i>&lt;b&gt;&amp;</i>")


def test_a_missing_variable_and_the_sandbox_are_render_errors() -> None:
    with pytest.raises(TemplateRenderError, match="'x' is undefined"):
        rendering.render(template("en"), {})
    with pytest.raises(TemplateRenderError):
        rendering.render(template("en", title="{{ x.__class__.__subclasses__() }}"), {"x": 1})
    with pytest.raises(TemplateRenderError, match="sandbox"):
        rendering.render(template("en", title="{{ range(10**9) | list }}"), {"x": 1})


def test_check_renders_every_variant() -> None:
    t = template("en", "fr")
    t.variants["fr"] = TemplateVariant(title="{{ y }}", message="m")
    with pytest.raises(TemplateRenderError, match="fr title"):
        rendering.check(t, {"x": 1}, "r")
    assert rendering.check(template("en", "fr"), {"x": 1}, "r").title == "en: 1"


def test_variants_are_checked() -> None:
    with pytest.raises(FieldError, match="fallback_locale"):
        rendering.variants({"fr": {"title": "t", "message": "m"}}, "en")
    with pytest.raises(FieldError, match="needs message"):
        rendering.variants({"en": {"title": "t"}}, "en")
    with pytest.raises(FieldError, match="locale"):
        rendering.variants({"not a tag": {"title": "t", "message": "m"}}, "en")
    with pytest.raises(FieldError, match="has title, message and html"):
        rendering.variants({"en": {"title": "t", "message": "m", "css": ""}}, "en")


def test_uses_name_runs_of_ids_per_partition() -> None:
    partitions = 4
    call = [5 + i * partitions for i in range(1000)]  # one many-recipient call in partition 1
    assert uses_of(call, partitions) == ["5+1000"] and ids_of("5+1000", partitions) == call
    mixed = [8, 1, 12, 9, 30]
    members = uses_of(mixed, partitions)
    assert sorted(i for m in members for i in ids_of(m, partitions)) == sorted(mixed)
    assert ids_of("r:abc", partitions) == []

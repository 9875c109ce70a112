"""Templates rendered in Jinja2's sandbox: the title and message as text, the HTML body with autoescape on.

Pure: no I/O. ``StrictUndefined`` makes a variable the context lacks an error rather than an empty string, so a
schedule call that forgets one is refused then (``TemplateRenderError``, a 422), not sent with a hole in it. The
sandbox refuses attribute access to Python internals and caps ``range``; what it renders is what the template and
the context say, nothing from the process.

A template renders with its context plus ``recipient`` (the id) and ``contact`` (``email``, ``phone``, ``locale``:
the recipient's contact data when it is sent, None where not set); ``locale`` is the variant chosen.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from ..errors import FieldError, TemplateRenderError
from ..models import Contact, Rendered, Template, TemplateVariant

MAX_SOURCE = 64 * 1024
"""The most characters one part (title, message, html) of one variant may hold."""
MAX_VARIANTS = 100
MAX_NAME = 64
NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
PARTS: tuple[str, ...] = ("title", "message", "html")

_text_env = SandboxedEnvironment(autoescape=False, undefined=jinja2.StrictUndefined)
_html_env = SandboxedEnvironment(autoescape=True, undefined=jinja2.StrictUndefined)
_compiled: OrderedDict[tuple[bool, str], jinja2.Template] = OrderedDict()
_COMPILED_MAX = 1024  # compiled sources, by (html, source): the same text compiles the same wherever it is from


def name(value: object) -> str:
    """A template name: 1 to 64 letters, digits, '-', '_' and '.' (it appears in keys, URLs and logs)."""
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_NAME or not set(value) <= NAME_CHARS:
        shown = repr(value[:80]) if isinstance(value, str) else type(value).__name__
        raise FieldError(f"a template name is 1 to {MAX_NAME} of letters, digits, '-', '_', '.'; got {shown}", "name")
    return value


def choose_locale(template: Template, locale: str | None) -> str:
    """The variant for a recipient's ``locale``: the same tag (any case), else its shorter forms (``pt-BR`` ->
    ``pt``), else a variant of the same language (``pt`` -> ``pt-BR``), else the fallback locale."""
    if locale:
        by_lower = {tag.lower(): tag for tag in template.variants}
        parts = locale.lower().split("-")
        for end in range(len(parts), 0, -1):
            found = by_lower.get("-".join(parts[:end]))
            if found is not None:
                return found
        for lower, tag in sorted(by_lower.items()):
            if lower.split("-")[0] == parts[0]:
                return tag
    return template.fallback_locale


def render(
    template: Template, context: Mapping[str, Any], *, recipient: str = "", contact: Contact | None = None
) -> Rendered:
    """The template rendered for ``recipient`` (its variant chosen by the contact's locale); raises
    ``TemplateRenderError`` saying which part failed and why."""
    locale = choose_locale(template, contact.locale if contact else None)
    variant = template.variants[locale]
    values = {
        **context,
        "recipient": recipient,
        "locale": locale,
        "contact": {
            "email": contact.email if contact else None,
            "phone": contact.phone if contact else None,
            "locale": contact.locale if contact else None,
        },
    }
    title = _render(template, locale, "title", variant.title, values)
    message = _render(template, locale, "message", variant.message, values)
    html = None if variant.html is None else _render(template, locale, "html", variant.html, values)
    return Rendered(locale=locale, title=" ".join(title.split()), message=message, html=html)


def check(template: Template, context: Mapping[str, Any], recipient: str, contact: Contact | None = None) -> Rendered:
    """Render every variant with ``context`` (as ``recipient`` with ``contact``), so a context that fails any
    locale is refused at schedule time; returns the fallback locale's rendering (the notification's preview)."""
    preview: Rendered | None = None
    for locale in template.variants:
        as_locale = Contact(
            recipient=recipient, email=contact.email if contact else None, phone=contact.phone if contact else None
        )
        as_locale.locale = locale
        got = render(template, context, recipient=recipient, contact=as_locale)
        if locale == template.fallback_locale:
            preview = got
    assert preview is not None  # the fallback locale is one of the variants (checked when it is saved)
    return preview


def compile_all(template: Template) -> None:
    """Compile every part of every variant; ``TemplateRenderError`` naming the first that does not."""
    for locale, variant in template.variants.items():
        for part in PARTS:
            source = getattr(variant, part)
            if source is not None:
                _compiled_part(template, locale, part, source)


def variants(value: object, fallback_locale: str) -> dict[str, TemplateVariant]:
    """Checked variants: a mapping of locale -> {title, message, html?}, the fallback among them."""
    from .contacts import locale as check_locale  # the one BCP 47 rule contact data uses too

    if not isinstance(value, Mapping) or not value:
        raise FieldError("variants must be a non-empty object of locale -> {title, message, html}", "variants")
    if len(value) > MAX_VARIANTS:
        raise FieldError(f"a template has at most {MAX_VARIANTS} variants; got {len(value)}", "variants")
    out: dict[str, TemplateVariant] = {}
    for tag, raw in value.items():
        check_locale(tag)
        if isinstance(raw, TemplateVariant):
            raw = {"title": raw.title, "message": raw.message, "html": raw.html}
        if not isinstance(raw, Mapping):
            raise FieldError(f"variants[{tag!r}] must be an object with title and message", f"variants.{tag}")
        parts: dict[str, str | None] = {}
        for part in PARTS:
            source = raw.get(part)
            if source is None and part != "html":
                raise FieldError(f"variants[{tag!r}] needs {part}", f"variants.{tag}.{part}")
            if source is not None and (not isinstance(source, str) or len(source) > MAX_SOURCE or "\x00" in source):
                raise FieldError(
                    f"variants[{tag!r}].{part} must be a string of at most {MAX_SOURCE} characters, no NUL",
                    f"variants.{tag}.{part}",
                )
            parts[part] = source
        unknown = set(raw) - set(PARTS)
        if unknown:
            raise FieldError(
                f"variants[{tag!r}] has title, message and html; got {sorted(unknown)[0]!r}", f"variants.{tag}"
            )
        out[tag] = TemplateVariant(title=str(parts["title"]), message=str(parts["message"]), html=parts["html"])
    check_locale(fallback_locale)
    if fallback_locale not in out:
        raise FieldError(
            f"fallback_locale must be one of the variants ({', '.join(out)}); got {fallback_locale!r}",
            "fallback_locale",
        )
    return out


def _compiled_part(template: Template, locale: str, part: str, source: str) -> jinja2.Template:
    key = (part == "html", source)
    found = _compiled.get(key)
    if found is not None:
        _compiled.move_to_end(key)
        return found
    try:
        found = (_html_env if part == "html" else _text_env).from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateRenderError(
            f"template {template.name!r} {locale} {part} does not compile: {exc.message} (line {exc.lineno})",
            f"variants.{locale}.{part}",
        ) from None
    _compiled[key] = found
    if len(_compiled) > _COMPILED_MAX:
        _compiled.popitem(last=False)
    return found


def _render(template: Template, locale: str, part: str, source: str, values: Mapping[str, Any]) -> str:
    compiled = _compiled_part(template, locale, part, source)
    try:
        return compiled.render(values)
    except jinja2.UndefinedError as exc:
        raise TemplateRenderError(
            f"template {template.name!r} {locale} {part} does not render with this context: {exc.message}; "
            "add it to the context",
            "context",
        ) from None
    except jinja2.exceptions.SecurityError as exc:
        raise TemplateRenderError(
            f"template {template.name!r} {locale} {part} was stopped by the sandbox: {exc}", "context"
        ) from None
    except Exception as exc:  # any error a template can raise while rendering (a bad filter argument, 1/0 ...)
        raise TemplateRenderError(
            f"template {template.name!r} {locale} {part} does not render with this context: "
            f"{type(exc).__name__}: {exc}",
            "context",
        ) from None

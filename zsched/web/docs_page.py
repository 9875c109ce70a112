"""``/docs``: the OpenAPI document as a plain HTML page, with no scripts or external assets, so it works on
a closed network."""

from __future__ import annotations

import html as _html
from functools import cache

from .openapi import document


@cache
def html(channels: tuple[str, ...] = ("websocket",)) -> str:
    """A readable HTML rendering of ``document()``: one section per endpoint, its errors listed."""
    doc = document(channels)
    esc = _html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>zsched API</title><style>"
        "body{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.4}"
        "code,pre{background:#f4f4f4;padding:0 .2em}h2{margin-top:1.5em;font-size:1.1em}"
        "td{vertical-align:top;padding:.1em .6em}</style></head><body>",
        f"<h1>zsched API {esc(doc['info']['version'])}</h1><p>{esc(doc['info']['description'])}</p>",
        "<p>Authenticate with <code>Authorization: Token &lt;token&gt;</code> (or <code>Bearer</code>); "
        "create a token with <code>zsched token create --user ID</code>. "
        "The machine-readable form is <a href='openapi.json'>openapi.json</a>.</p>",  # relative: works mounted
    ]
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            parts.append(f"<h2><code>{method.upper()} {esc(path)}</code></h2><p>{esc(op['summary'])}</p>")
            if "requestBody" in op:
                name = op["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
                fields = doc["components"]["schemas"][name]["properties"]
                required = set(doc["components"]["schemas"][name].get("required", ()))
                parts.append(
                    "<p>Body (JSON): "
                    + ", ".join(f"<code>{esc(f)}</code>{'' if f in required else '?'}" for f in fields)
                    + "</p>"
                )
            rows = "".join(
                f"<tr><td><b>{code}</b></td><td>{esc(r['description'])}</td></tr>"
                for code, r in op["responses"].items()
            )
            parts.append(f"<table>{rows}</table>")
    parts.append("</body></html>")
    return "".join(parts)

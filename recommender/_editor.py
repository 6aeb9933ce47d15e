"""The editor's page: plain server-rendered HTML of the lists readers will see, and the forms that change them.

Pure functions from a model (and the request's values) to HTML text; ``web`` wires
them to routes. Every piece of text from the articles, the request or the audit
trail goes through :func:`_e` (``html.escape``), so an article titled
``<script>alert(1)</script>`` shows as text.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from ._lists import Recommendation

__all__ = ["COMPARED", "article_page", "search_page"]

#: The settings the page compares with the model's own by default.
COMPARED = {"half_life_days": "30", "diversity": "0.3"}

_STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1d2330; background: #f5f6f8; }
header { background: #1d2330; color: #fff; padding: 10px 24px; display: flex; gap: 24px; align-items: center; }
header a { color: #fff; text-decoration: none; font-weight: 600; }
header form { margin-left: auto; }
main { max-width: 1280px; margin: 0 auto; padding: 16px 24px 40px; }
input[type=text], input[type=search], input[type=password] { padding: 5px 8px; border: 1px solid #b8bfcc; border-radius: 4px; }
button { padding: 5px 10px; border: 1px solid #4661b9; background: #4661b9; color: #fff; border-radius: 4px; cursor: pointer; }
button.quiet { background: #fff; color: #4661b9; }
.note { background: #fff7d6; border: 1px solid #e7d27c; padding: 6px 10px; border-radius: 4px; }
.done { background: #e3f6e5; border: 1px solid #87c98f; padding: 6px 10px; border-radius: 4px; }
.columns { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 18px; margin-top: 12px; }
.card { background: #fff; border: 1px solid #dde1e8; border-radius: 6px; padding: 10px 12px; min-width: 0; overflow-wrap: anywhere; margin-bottom: 14px; }
h1 { font-size: 24px; margin: 8px 0 4px; } h2 { font-size: 17px; margin: 4px 0 8px; }
table { border-collapse: collapse; width: 100%; font-size: 13.5px; }
th, td { text-align: left; padding: 5px 6px; border-bottom: 1px solid #eceef2; vertical-align: top; }
th { color: #5a6272; font-weight: 600; }
.reason { font-size: 12px; padding: 1px 6px; border-radius: 8px; background: #e8ecf6; }
.reason.pinned { background: #fde2c4; } .reason.fallback { background: #e6e6e6; }
.terms { color: #5a6272; font-size: 12px; }
.parts { color: #5a6272; font-size: 12px; }
td.score { width: 8.5em; } td.actions { width: 4.5em; }
.actions form { display: inline; }
small { color: #5a6272; }
"""


def _e(value: Any) -> str:
    """Text for HTML: escaped, quotes included."""
    return html.escape("" if value is None else str(value), quote=True)


def _page(title: str, body: str, *, query: str = "") -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<meta name=viewport content='width=device-width, initial-scale=1'><title>{_e(title)}</title>"
        f"<style>{_STYLE}</style></head><body><header><a href='/editor'>You Might Like: editor</a>"
        "<form method=get action='/editor'><input type=search name=q placeholder='Title or id' "
        f"value='{_e(query)}' aria-label=Search> <button>Find</button></form></header><main>{body}</main></body></html>"
    )


def _editing_note(can_edit: bool, enabled: bool) -> str:
    if can_edit:
        return ""
    if not enabled:
        return "<p class=note>Read-only: start the service with <code>--editor-token</code> to edit lists.</p>"
    return (
        "<form class=note method=post action='/editor/login'>Enter the editor token to edit: "
        "<input type=password name=token aria-label='Editor token'> <button>Unlock editing</button></form>"
    )


def search_page(
    found: Sequence[tuple[str, str, str | None]],
    query: str,
    *,
    articles: int,
    version_name: str | None,
    can_edit: bool,
    enabled: bool,
) -> str:
    """The start page: find an article by title or id."""
    rows = "".join(
        f"<tr><td><a href='/editor/articles/{_e(article_id)}'>{_e(title)}</a></td><td><small>{_e(article_id)}"
        f"</small></td><td><small>{_e(published or '')}</small></td></tr>"
        for article_id, title, published in found
    )
    if query and not found:
        rows = f"<tr><td colspan=3>No article matches {_e(query)!s}.</td></tr>"
    listing = f"<table><tr><th>Title</th><th>Id</th><th>Published</th></tr>{rows}</table>" if rows else ""
    body = (
        f"<h1>Find an article</h1><p><small>{articles:,} articles, model version {_e(version_name)}</small></p>"
        f"{_editing_note(can_edit, enabled)}<div class=card>{listing or 'Search by words of the title, or the id.'}</div>"
    )
    return _page("Editor", body, query=query)


def _list_table(items: Sequence[Recommendation], *, source_id: str, csrf: str | None) -> str:
    if not items:
        return "<p>(no similar articles)</p>"
    rows = []
    for item in items:
        parts = "; ".join(
            f"{name} {value:+.3f}"
            for name, value in (
                ("popularity", item.popularity_part),
                ("freshness", item.freshness_part),
                ("boost", item.boost_part),
                ("diversity", item.diversity_part),
            )
        )
        terms = ", ".join(f"{term} {value:.3f}" for term, value in item.shared_terms)
        actions = ""
        if csrf is not None:
            actions = _action_form(
                "ban", csrf, source_id=source_id, recommended_id=item.article_id, label="Ban", quiet=True
            ) + _action_form("block", csrf, source_id=source_id, article_ids=item.article_id, label="Block", quiet=True)
        rows.append(
            f"<tr data-article-id='{_e(item.article_id)}'><td>{item.rank}</td><td>"
            f"<a href='/editor/articles/{_e(item.article_id)}'>{_e(item.title)}</a><br>"
            f"<span class='reason {_e(item.reason)}'>{_e(item.reason)}</span> <small>{_e(item.article_id)}</small>"
            f"<div class=terms>{_e(terms)}</div></td><td class=score>{item.score:.3f}<div class=parts>similarity "
            f"{item.similarity:.3f}<br>{_e(parts)}</div></td><td class=actions>{actions}</td></tr>"
        )
    return "<table><tr><th>#</th><th>Article</th><th>Score</th><th></th></tr>" + "".join(rows) + "</table>"


def _action_form(action: str, csrf: str, *, label: str, quiet: bool = False, **fields: str) -> str:
    hidden = "".join(f"<input type=hidden name='{_e(k)}' value='{_e(v)}'>" for k, v in fields.items())
    style = " class=quiet" if quiet else ""
    return (
        f"<form method=post action='/editor/{_e(action)}'><input type=hidden name=csrf value='{_e(csrf)}'>"
        f"{hidden}<button{style}>{_e(label)}</button></form>"
    )


def _settings_form(article_id: str, left: Mapping[str, str], right: Mapping[str, str]) -> str:
    def fields(prefix: str, values: Mapping[str, str]) -> str:
        text = "; ".join(f"{k}={v}" for k, v in values.items())
        return f"<input type=text name={prefix} value='{_e(text)}' size=38 aria-label='{prefix} settings'>"

    return (
        f"<form method=get action='/editor/articles/{_e(article_id)}'>Compare "
        f"{fields('left', left)} with {fields('right', right)} <button>Compare</button> "
        "<small>(settings as <code>name=value; ...</code>, empty for the model's own)</small></form>"
    )


def article_page(
    source: Mapping[str, Any],
    columns: Sequence[tuple[str, Sequence[Recommendation] | str]],
    settings: tuple[Mapping[str, str], Mapping[str, str]],
    *,
    editorial: Mapping[str, Any],
    audit: Sequence[Mapping[str, Any]],
    version_name: str | None,
    csrf: str | None,
    enabled: bool,
    message: str | None,
) -> str:
    """One article: its list as readers see it, side by side under two settings, and the editorial forms."""
    article_id = str(source["article_id"])
    cards = []
    for title, items in columns:
        content = (
            f"<p class=note>{_e(items)}</p>"
            if isinstance(items, str)
            else _list_table(items, source_id=article_id, csrf=csrf)
        )
        cards.append(f"<section class=card><h2>{_e(title)}</h2>{content}</section>")
    edit = ""
    if csrf is not None:
        pinned = ", ".join(editorial.get("pins", []))
        edit = (
            "<section class=card><h2>Edit this list</h2>"
            f"<form method=post action='/editor/pin'><input type=hidden name=csrf value='{_e(csrf)}'>"
            f"<input type=hidden name=source_id value='{_e(article_id)}'>Pin (ids in order): "
            f"<input type=text name=recommended_ids value='{_e(pinned)}' size=40 aria-label='Pinned ids'> "
            "<button>Pin</button></form> "
            + _action_form("unpin", csrf, source_id=article_id, label="Unpin all", quiet=True)
            + "<p>"
            + (
                _action_form(
                    "unblock", csrf, source_id=article_id, article_ids=article_id, label="Unblock this article"
                )
                if editorial.get("blocked")
                else _action_form(
                    "block", csrf, source_id=article_id, article_ids=article_id, label="Block this article"
                )
            )
            + "</p>"
            + "".join(
                "<p>Banned: "
                + _e(banned)
                + " "
                + _action_form("unban", csrf, source_id=article_id, recommended_id=banned, label="Unban", quiet=True)
                + "</p>"
                for banned in editorial.get("bans", [])
            )
            + "</section>"
        )
    trail = "".join(
        f"<tr><td><small>{_e(e.get('at'))}</small></td><td>{_e(e.get('editor'))}</td><td>{_e(e.get('action'))}</td>"
        f"<td><small>{_e(_arguments(e.get('arguments')))}</small></td><td><small>{_e(e.get('version'))}</small></td></tr>"
        for e in reversed(list(audit))
    )
    history = (
        "<section class=card><h2>Audit trail</h2><table><tr><th>When</th><th>Who</th><th>What</th><th></th>"
        f"<th>Version</th></tr>{trail}</table></section>"
        if trail
        else ""
    )
    state = []
    if editorial.get("blocked"):
        state.append("blocked: it is in no list")
    if editorial.get("pins"):
        state.append("pins: " + ", ".join(editorial["pins"]))
    body = (
        f"<h1>{_e(source.get('title'))}</h1><p><small>{_e(article_id)} · {_e(source.get('published') or 'undated')} · "
        f"{_e(source.get('category') or 'no category')} · model version {_e(version_name)}</small></p>"
        + (f"<p class=done>{_e(message)}</p>" if message else "")
        + (f"<p class=note>{_e('; '.join(state))}</p>" if state else "")
        + _editing_note(csrf is not None, enabled)
        + _settings_form(article_id, *settings)
        + f"<div class=columns>{''.join(cards)}</div>{edit}{history}"
    )
    return _page(str(source.get("title") or article_id), body)


def _arguments(arguments: Any) -> str:
    if not isinstance(arguments, Mapping):
        return ""
    return "; ".join(f"{k}={', '.join(v) if isinstance(v, list) else v}" for k, v in arguments.items())

"""The HTTP face: the same lists as :class:`ModelHolder`, for sites in any language (``recommender serve``).

An ASGI application (Starlette; the ``[web]`` extra) over one model directory::

    GET  /articles/{article_id}/related?k=5&half_life_days=30&exclude=ID&exclude=ID[&fallback=popular]
    POST /related                 {"title": ..., "summary": ..., "body": ..., "k": 5, ...}  (a draft's list)
    GET  /popular?k=10[&category=...][&exclude=ID]
    GET  /health                  model version, version name, article count, when it was loaded
    POST /editorial/{action}      pin, unpin, ban, unban, block, unblock (Authorization: Bearer TOKEN)

Every ranking control is a query parameter (``categories`` and ``exclude`` repeat
their key; ``fallback=true|false`` is the control, ``fallback=popular`` asks for the
popular list when the article is unknown); ``k`` is at most the model's pool size. Answers are
:meth:`Answer.to_dict` JSON, with an ``ETag`` and ``Cache-Control`` keyed on the
model version (a request with ``If-None-Match`` gets ``304``). Errors are JSON
``{"error": ...}``: 404 for an unknown article (or the popular list with
``fallback=popular``), 422 for a bad value, 413 for a request body over the limit,
401/403 for editing without the token.

The application watches the model directory and reloads in the background when a
new version appears (loaded and warmed before the switch; the old one answers
meanwhile), in every worker process. An editorial action loads the current
version, applies the action, saves it as a new version (the save is checked and
published atomically; later rebuilds carry it forward), switches to it at once in
the worker that made it (the others pick it up within the watch interval) and
appends who, when and what to the model directory's audit trail.

``create_app(model_dir)`` returns the application, to run with any ASGI server or
to mount inside an existing ASGI site.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import html
import json
import os
import threading
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._dates import date_text
from ._editor import COMPARED, article_page, search_page
from ._errors import ModelFormatError, UnknownArticleError
from ._ranking import control_specs
from ._serving import ModelHolder

__all__ = ["app_from_environment", "create_app"]

#: The largest request body accepted by ``POST`` endpoints (bytes).
MAX_BODY_BYTES = 1_000_000
#: ``Cache-Control`` of list answers: a minute in a browser or CDN (an editorial change shows within that).
CACHE_CONTROL = "public, max-age=60"
#: The environment variables ``recommender serve`` passes to each worker process.
ENVIRONMENT = {
    "model_dir": "RECOMMENDER_MODEL_DIR",
    "editor_token": "RECOMMENDER_EDITOR_TOKEN",
    "cors_origins": "RECOMMENDER_CORS_ORIGINS",
    "interval": "RECOMMENDER_WATCH_INTERVAL",
    "newest_valid": "RECOMMENDER_NEWEST_VALID",
}
_EDITORIAL_ACTIONS = ("pin", "unpin", "ban", "unban", "block", "unblock")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


#: The lock file that serialises editorial actions on one model directory across worker processes.
_EDIT_LOCK = ".edit-lock"
#: Items shown per list on the editor's page (at most the pool size).
_EDITOR_K = 10
#: The editor's session cookie (an HMAC of the token; HttpOnly, SameSite=Strict).
_SESSION = "recommender_editor"
#: Headers of the editor's pages: no caching, no framing, no scripts from anywhere.
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}


class _Query(dict):
    """Settings parsed from the editor's ``name=value; ...`` text, read like query parameters."""

    def getlist(self, name: str) -> list[str]:
        value = self[name]
        return value.split(",") if isinstance(value, str) else list(value)


def _settings(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in text.replace("&", ";").split(";"):
        if "=" in part:
            name, value = part.split("=", 1)
            if name.strip():
                out[name.strip()[:40]] = value.strip()[:200]
    return out


def _mentions(entry: Mapping[str, Any], article_id: str) -> bool:
    arguments = entry.get("arguments")
    if not isinstance(arguments, Mapping):
        return False
    return any(v == article_id or (isinstance(v, list) and article_id in v) for v in arguments.values())


class _Invalid(ValueError):
    """A request value that cannot be used (HTTP 422)."""


def _controls(query: Any) -> dict[str, Any]:
    """The ranking controls given as query parameters, typed by their one declaration (``Controls``)."""
    out: dict[str, Any] = {}
    for spec in control_specs():
        if spec.name not in query:
            continue
        kind = spec.metadata["kind"]
        values = query.getlist(spec.name)
        if spec.name == "fallback" and values[-1] == "popular":
            continue  # fallback=popular: the popular list for an unknown article (the control stays as it is)
        if kind == "names":
            out[spec.name] = tuple(v for value in values for v in value.split(",") if v)
            continue
        value = values[-1].strip()
        try:
            if value.lower() in ("", "none", "null") and spec.default is None:
                out[spec.name] = None
            elif kind == "number":
                out[spec.name] = float(value)
            elif kind == "integer":
                out[spec.name] = int(value)
            elif value.lower() in _TRUE + _FALSE:
                out[spec.name] = value.lower() in _TRUE
            else:
                raise ValueError(value)
        except ValueError:
            raise _Invalid(f"{spec.name} must be a {kind}, got {value[:40]!r}.") from None
    return out


def _exclude(query: Any) -> list[str]:
    """The ids of repeated (or comma-separated) ``exclude`` parameters."""
    return [v for value in query.getlist("exclude") for v in value.split(",") if v]


def _k(query: Any, default: int) -> int:
    value = query.get("k")
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise _Invalid(f"k must be an integer >= 1, got {value[:40]!r}.") from None


def create_app(
    model_dir: str | os.PathLike[str],
    *,
    editor_token: str | None = None,
    cors_origins: tuple[str, ...] | list[str] = (),
    watch: bool = True,
    interval: float = 2.0,
    max_body_bytes: int = MAX_BODY_BYTES,
    newest_valid: bool = False,
) -> Any:
    """The ASGI application serving the lists of ``model_dir`` (see the module docstring).

    Parameters
    ----------
    model_dir : path-like
        The model directory (``recommender build --out``).
    editor_token : str, optional
        Enables the editorial endpoints for requests carrying
        ``Authorization: Bearer <editor_token>``; without it they answer 403.
    cors_origins : sequence of str
        Origins allowed to call the API from a browser (JavaScript widgets);
        ``("*",)`` for any. None by default.
    watch, interval
        Reload in the background when the directory's current version changes,
        checking every ``interval`` seconds (see :class:`ModelHolder`).
    max_body_bytes : int
        The largest ``POST`` body accepted (413 above it).
    newest_valid : bool
        When ``CURRENT`` points at a version that does not load, serve the newest
        complete version that does (logged) instead of failing to start; see
        :class:`ModelHolder`.
    """
    try:
        from starlette.applications import Starlette
        from starlette.middleware import Middleware
        from starlette.middleware.cors import CORSMiddleware
        from starlette.requests import Request
        from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
        from starlette.routing import Route
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError(
            f"The web layer needs Starlette and uvicorn: pip install 'recommender[web]' ({exc})."
        ) from None
    from starlette.concurrency import run_in_threadpool

    folder = Path(model_dir)
    holder = ModelHolder(folder, watch=watch, interval=interval, newest_valid=newest_valid)
    editing = threading.Lock()  # one editorial save at a time in this process (the store locks across them)

    def error(status: int, message: str, **extra: Any) -> JSONResponse:
        return JSONResponse({"error": " ".join(str(message).split()), **extra}, status_code=status)

    def answered(request: Request, document: Mapping[str, Any], version: str) -> Response:
        tag = '"' + hashlib.sha256(f"{version}\n{request.url.path}?{request.url.query}".encode()).hexdigest()[:32] + '"'
        headers = {"ETag": tag, "Cache-Control": CACHE_CONTROL}
        if tag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
            return Response(status_code=304, headers=headers)
        return JSONResponse(document, headers=headers)

    async def related(request: Request) -> Response:
        article_id = request.path_params["article_id"]
        query = request.query_params
        try:
            k = _k(query, 5)
            controls = _controls(query)
            exclude = _exclude(query)
            if query.get("fallback") == "popular":
                answer = holder.related(article_id, k=k, exclude=exclude, **controls)
            else:
                answer = holder.recommend(article_id, k=k, exclude=exclude, **controls)
        except UnknownArticleError as exc:
            return error(404, str(exc), article_id=article_id)
        except ValueError as exc:
            return error(422, str(exc))
        return answered(request, answer.to_dict(), answer.version)

    async def popular(request: Request) -> Response:
        query = request.query_params
        try:
            answer = holder.popular(_k(query, 10), category=query.get("category"), exclude=_exclude(query))
        except ValueError as exc:
            return error(422, str(exc))
        return answered(request, answer.to_dict(), answer.version)

    async def raw_body(request: Request) -> bytes | JSONResponse:
        """The request body, read up to ``max_body_bytes`` (413 beyond, whatever Content-Length says)."""
        declared = request.headers.get("content-length")
        too_large = error(413, f"The request body is larger than {max_body_bytes:,} bytes.")
        if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
            return too_large
        raw = b""
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > max_body_bytes:
                return too_large
        return raw

    async def body_of(request: Request) -> dict[str, Any] | Response:
        raw = await raw_body(request)
        if isinstance(raw, Response):
            return raw
        try:
            document = json.loads(raw.decode("utf-8") or "{}")
        except (UnicodeDecodeError, ValueError, RecursionError):
            return error(400, "The request body is not a JSON object.")
        if not isinstance(document, dict):
            return error(400, "The request body is not a JSON object.")
        return document

    async def draft(request: Request) -> Response:
        document = await body_of(request)
        if isinstance(document, Response):
            return document
        fields = ("title", "summary", "body", "published", "category", "tags", "k", "exclude")
        names = {spec.name for spec in control_specs()}
        unknown = sorted(set(document) - set(fields) - names)
        if unknown:
            return error(422, f"Unknown fields {unknown}; expected some of {sorted(set(fields) | names)}.")
        arguments = {name: document[name] for name in fields if name in document}
        for name in ("title", "summary", "body"):
            if not isinstance(arguments.get(name, ""), str):
                return error(422, f"{name} must be text.")
        controls = {name: document[name] for name in names if name in document}
        controls = {k: tuple(v) if isinstance(v, list) else v for k, v in controls.items()}
        try:
            answer = await run_in_threadpool(lambda: holder.recommend_for_text(**arguments, **controls))
        except (TypeError, ValueError) as exc:
            return error(422, str(exc))
        return JSONResponse(answer.to_dict(), headers={"Cache-Control": "no-store"})

    async def health(request: Request) -> Response:
        model = holder.model
        return JSONResponse(
            {
                "status": "ok",
                "version": holder.version,
                "version_name": model.version_name,
                "articles": model.n_articles,
                "loaded_at": holder.loaded_at,
                "reload_error": holder.last_error,
            },
            headers={"Cache-Control": "no-store"},
        )

    async def editorial(request: Request) -> Response:
        action = request.path_params["action"]
        if action not in _EDITORIAL_ACTIONS:
            return error(404, f"Unknown editorial action {action!r}; expected one of {list(_EDITORIAL_ACTIONS)}.")
        if not editor_token:
            return error(403, "Editing is off: start the service with --editor-token (or RECOMMENDER_EDITOR_TOKEN).")
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {editor_token}".encode()):
            return error(401, "Editing needs the header 'Authorization: Bearer <editor token>'.")
        document = await body_of(request)
        if isinstance(document, Response):
            return document
        who = str(document.get("editor") or request.headers.get("x-editor") or "unknown")[:100]
        try:
            result = await run_in_threadpool(_edit, holder, folder, editing, action, document, who)
        except UnknownArticleError as exc:
            return error(404, str(exc))
        except (TypeError, ValueError) as exc:
            return error(422, str(exc))
        return JSONResponse(result, headers={"Cache-Control": "no-store"})

    # ------------------------------------------------------------------ the editor's page

    def session_of(token: str) -> str:
        return hmac.new(token.encode(), b"recommender-editor-session", hashlib.sha256).hexdigest()

    def csrf_of(token: str) -> str:
        return hmac.new(token.encode(), b"recommender-editor-csrf", hashlib.sha256).hexdigest()

    def can_edit(request: Request) -> bool:
        cookie = request.cookies.get(_SESSION, "")
        return bool(editor_token) and hmac.compare_digest(cookie.encode(), session_of(editor_token).encode())

    def page(text: str, status: int = 200) -> HTMLResponse:
        return HTMLResponse(text, status_code=status, headers=_PAGE_HEADERS)

    async def editor_search(request: Request) -> Response:
        model = holder.model
        query = request.query_params.get("q", "").strip()[:200]
        found: list[tuple[str, str, str | None]] = []
        if query:
            table = model.articles_
            titles = table["title"].astype(str)
            hits = table[(table["article_id"] == query) | titles.str.contains(query, case=False, regex=False)]
            for row in hits.head(25).itertuples(index=False):
                found.append((row.article_id, row.title, date_text(row.published)))
        return page(
            search_page(
                found, query, articles=model.n_articles, version_name=model.version_name,
                can_edit=can_edit(request), enabled=bool(editor_token),
            )
        )  # fmt: skip

    async def editor_article(request: Request) -> Response:
        model = holder.model
        article_id = request.path_params["article_id"]
        try:
            row = model.row_of(article_id)
        except UnknownArticleError as exc:
            return page(search_page([], article_id, articles=model.n_articles, version_name=model.version_name,
                                    can_edit=can_edit(request), enabled=bool(editor_token)).replace(
                "Find an article", f"Find an article: {html.escape(str(exc))}"), 404)  # fmt: skip
        source = model.articles_.iloc[row]
        query = request.query_params
        left = _settings(query.get("left", ""))
        right = _settings(query.get("right", "; ".join(f"{k}={v}" for k, v in COMPARED.items())))
        columns = []
        for values in (left, right):
            title = "As readers see it" if not values else "With " + ", ".join(f"{k}={v}" for k, v in values.items())
            unknown = sorted(set(values) - {spec.name for spec in control_specs()})
            try:
                if unknown:
                    raise _Invalid(f"Unknown settings {unknown}: use the names of the ranking controls.")
                k = min(_EDITOR_K, int(model.neighbours_.shape[1]))
                items = holder.recommend(article_id, k=k, **_controls(_Query(values))).items
            except ValueError as exc:
                items = str(exc)
            columns.append((title, items))
        editorial = {
            "pins": model.pins.get(article_id, []),
            "bans": sorted(model.bans.get(article_id, set())),
            "blocked": article_id in model.blocked,
        }
        from ._store import read_audit

        audit = [e for e in read_audit(folder, last=200) if _mentions(e, article_id)][-20:]
        return page(
            article_page(
                {"article_id": article_id, "title": source["title"], "published": date_text(source["published"]),
                 "category": source["category"]},
                columns, (left, right), editorial=editorial, audit=audit, version_name=model.version_name,
                csrf=csrf_of(editor_token) if editor_token and can_edit(request) else None,
                enabled=bool(editor_token), message=query.get("done"),
            )
        )  # fmt: skip

    async def form_of(request: Request) -> dict[str, str] | Response:
        raw = await raw_body(request)
        if isinstance(raw, Response):
            return raw
        pairs = urllib.parse.parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)
        return {k: v for k, v in pairs}

    def same_origin(request: Request) -> bool:
        origin = request.headers.get("origin")
        if origin is None or origin == "null":
            return origin is None
        return urllib.parse.urlsplit(origin).netloc == request.headers.get("host", "")

    async def editor_login(request: Request) -> Response:
        form = await form_of(request)
        if isinstance(form, Response):
            return form
        back = request.headers.get("referer") or "/editor"
        if urllib.parse.urlsplit(back).netloc not in ("", request.headers.get("host", "")):
            back = "/editor"
        if not editor_token or not same_origin(request):
            return page("<p>Editing is off.</p>", 403)
        if not hmac.compare_digest(form.get("token", "").encode(), editor_token.encode()):
            return page("<p>Wrong editor token. <a href='/editor'>Back</a></p>", 401)
        response = RedirectResponse(back, status_code=303)
        response.set_cookie(_SESSION, session_of(editor_token), httponly=True, samesite="strict", path="/")
        return response

    async def editor_action(request: Request) -> Response:
        action = request.path_params["action"]
        form = await form_of(request)
        if isinstance(form, Response):
            return form
        if action not in _EDITORIAL_ACTIONS:
            return page("<p>Unknown action.</p>", 404)
        if not editor_token:
            return page("<p>Editing is off: start the service with --editor-token.</p>", 403)
        if not can_edit(request) or not same_origin(request):
            return page("<p>Enter the editor token first. <a href='/editor'>Back</a></p>", 401)
        if not hmac.compare_digest(form.get("csrf", "").encode(), csrf_of(editor_token).encode()):
            return page("<p>This form has expired; reload the page and try again.</p>", 403)
        document: dict[str, Any] = {"editor": form.get("editor") or "editor page"}
        for name in ("source_id", "recommended_id"):
            if form.get(name):
                document[name] = form[name]
        for name in ("article_ids", "recommended_ids"):
            if name in form:
                document[name] = [v.strip() for v in form[name].split(",") if v.strip()]
        try:
            result = await run_in_threadpool(_edit, holder, folder, editing, action, document, document["editor"])
        except (UnknownArticleError, TypeError, ValueError) as exc:
            return page(f"<p>{html.escape(str(exc))} <a href='/editor'>Back</a></p>", 422)
        source = form.get("source_id") or (document.get("article_ids") or [""])[0]
        done = f"{action} saved as {result['version_name']}; changed: {', '.join(result['changed']) or 'nothing'}"
        target = f"/editor/articles/{urllib.parse.quote(source, safe='')}?done={urllib.parse.quote(done)}"
        return RedirectResponse(target, status_code=303)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> Any:
        yield
        holder.close()  # stop watching when the server stops

    routes = [
        Route("/articles/{article_id:path}/related", related, methods=["GET"]),
        Route("/related", draft, methods=["POST"]),
        Route("/popular", popular, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/editorial/{action}", editorial, methods=["POST"]),
        Route("/editor", editor_search, methods=["GET"]),
        Route("/editor/articles/{article_id:path}", editor_article, methods=["GET"]),
        Route("/editor/login", editor_login, methods=["POST"]),
        Route("/editor/{action}", editor_action, methods=["POST"]),
    ]
    middleware = []
    if cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(cors_origins),
                allow_methods=["GET", "POST"],
                allow_headers=["Authorization", "Content-Type", "If-None-Match"],
                expose_headers=["ETag"],
            )
        )
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.holder = holder
    return app


def _edit(
    holder: ModelHolder, folder: Path, editing: threading.Lock, action: str, document: Mapping[str, Any], who: str
) -> dict[str, Any]:
    """Apply one editorial action to the current version, save it as a new version and serve it."""
    from ._locks import held
    from ._store import append_audit, read_manifest

    def ids(name: str) -> list[str]:
        value = document.get(name)
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ValueError(f"{name} must be a list of article ids.")
        return value

    def one(name: str) -> str:
        value = document.get(name)
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name} must be an article id.")
        return value

    with editing, held(folder / _EDIT_LOCK, what=f"The model directory '{folder}'", wait=True):
        # one editor at a time across worker processes, each starting from the directory's current version
        if holder.version != read_manifest(folder)["digest"]:
            holder.reload()
        model = holder.model.editable_copy()
        if action in ("block", "unblock"):
            arguments: dict[str, Any] = {"article_ids": ids("article_ids")}
            changed = getattr(model, action)(arguments["article_ids"])
        elif action == "pin":
            arguments = {"source_id": one("source_id"), "recommended_ids": ids("recommended_ids")}
            changed = model.pin(arguments["source_id"], arguments["recommended_ids"])
        elif action == "unpin":
            arguments = {"source_id": one("source_id")}
            changed = model.pin(arguments["source_id"], [])
        else:
            arguments = {"source_id": one("source_id"), "recommended_id": one("recommended_id")}
            changed = getattr(model, action)(arguments["source_id"], arguments["recommended_id"])
        name = model.save(folder)
        append_audit(folder, {"editor": who, "action": action, "arguments": arguments, "version": name})
        try:
            holder.reload()
        except ModelFormatError:  # the watcher reports it; the old version keeps serving
            pass
    return {"version": holder.version, "version_name": name, "changed": sorted(changed)}


def app_from_environment() -> Any:
    """The application ``recommender serve`` runs in each worker process, configured by :data:`ENVIRONMENT`."""
    model_dir = os.environ.get(ENVIRONMENT["model_dir"])
    if not model_dir:
        raise RuntimeError(f"Set {ENVIRONMENT['model_dir']} to the model directory to serve.")
    origins = tuple(o for o in os.environ.get(ENVIRONMENT["cors_origins"], "").split(",") if o)
    return create_app(
        model_dir,
        editor_token=os.environ.get(ENVIRONMENT["editor_token"]) or None,
        cors_origins=origins,
        interval=float(os.environ.get(ENVIRONMENT["interval"], "2.0")),
        newest_valid=os.environ.get(ENVIRONMENT["newest_valid"]) == "1",
    )

"""The WSGI application behind `durability serve` and `durability run`.

Routes come from the modules named in `ROUTE_MODULES`; each defines
`routes() -> list[werkzeug.routing.Rule]` whose endpoints are handlers
`handler(request, web, **values) -> werkzeug.Response`. `web` gives a handler the
config, a state store opened for this request only (SQLite connections must not cross
the server's worker threads), and the clock.
"""

from __future__ import annotations

import importlib
import json
import logging
import re
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from durability.model import now_utc

if TYPE_CHECKING:
    from werkzeug.wrappers import Request, Response

    from durability.config import Config
    from durability.state.store import Store

log = logging.getLogger(__name__)

# The customer-link module comes first; the status page and fleet modules follow.
ROUTE_MODULES: tuple[str, ...] = (
    "durability.web.links",
    "durability.web.auth",
    "durability.web.status",
    "durability.web.fleet",
)

# Request body caps by path prefix (413 above them; nothing from a refused request is
# read or stored). Customer links take a form post or a helper receipt; the fleet
# endpoint takes one node's report.
BODY_LIMITS: tuple[tuple[str, int], ...] = (
    ("/l/", 16 * 1024),
    ("/fleet/", 2 * 1024 * 1024),
)
DEFAULT_BODY_LIMIT = 64 * 1024
# The deepest JSON nesting any endpoint accepts.
MAX_JSON_DEPTH = 32
# Every page: no framing by other sites. Pages with forms (login, links) and the
# plain pages get the strict policy below; others may set their own.
FRAME_POLICY = "frame-ancestors 'none'"
STRICT_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "
              "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
_TOKEN_PATH = re.compile(r"^(/l/[a-z]+/)[^/]+")
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_JSON_BRACKET = re.compile(rb"[\[\]{}]")

Handler = Callable[..., "Response"]
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class Web:
    """What a handler gets: `.config`, `.store()` (opened on first use) and `.now()`.

    `.shared` is one dict per app, kept across requests (for small caches; handlers
    use `setdefault` on it and lock what they keep there).
    """

    def __init__(
        self,
        config: Config,
        store_factory: Callable[[], Store],
        clock: Callable[[], datetime] = now_utc,
        shared: dict[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.shared: dict[str, Any] = {} if shared is None else shared
        self._store_factory = store_factory
        self._clock = clock
        self._store: Store | None = None

    def store(self) -> Store:
        """Return the state store for this request, opening it on first use."""
        if self._store is None:
            self._store = self._store_factory()
        return self._store

    def now(self) -> datetime:
        """Return the current time (timezone-aware UTC)."""
        return self._clock()

    def close(self) -> None:
        """Close the store if this request opened one."""
        if self._store is not None:
            try:
                self._store.close()
            finally:
                self._store = None


def collect_rules(modules: Iterable[str] = ROUTE_MODULES) -> list[Any]:
    """Given route module names, return all their werkzeug Rules, in module order."""
    rules: list[Any] = []
    for name in modules:
        module = importlib.import_module(name)
        rules.extend(module.routes())
    return rules


def body_limit(path: str) -> int:
    """Given a request path, return the largest body it accepts, in bytes."""
    for prefix, limit in BODY_LIMITS:
        if path.startswith(prefix):
            return limit
    return DEFAULT_BODY_LIMIT


def redact_path(path: str) -> str:
    """Given a request path, return it with any link token replaced, for logs."""
    return _TOKEN_PATH.sub(r"\1<token>", path)


def load_json(body: bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Given a request body, return its JSON value.

    Raise ValueError if it is not UTF-8 JSON (NaN and Infinity are not), or nests
    deeper than `max_depth` (checked before parsing, so no input can exhaust the
    parser's recursion).
    """
    depth = deepest = 0
    for match in _JSON_BRACKET.finditer(_JSON_STRING.sub(b"", body)):
        depth += 1 if match.group() in (b"[", b"{") else -1
        if depth > deepest:
            deepest = depth
            if deepest > max_depth:
                raise ValueError(f"JSON nested deeper than {max_depth} levels")
    try:
        return json.loads(body, parse_constant=_refuse_constant)
    except RecursionError as error:  # pragma: no cover - the scan above stops it first
        raise ValueError(f"JSON nested deeper than {max_depth} levels") from error


def _refuse_constant(name: str) -> Any:
    # NaN and Infinity are Python's extension, not JSON; nothing downstream reads them.
    raise ValueError(f"{name} is not a JSON number")


def same_origin(request: Request, base_url: str) -> bool:
    """Return False if a browser says the request comes from another site.

    The Origin header (else the Referer's origin) must be this server's own address as
    the request names it, or the origin of `web.base_url`. A request with neither
    header (not from a browser form) passes; browsers send Origin with every POST.
    """
    from urllib.parse import urlsplit

    claimed = request.headers.get("Origin")
    if not claimed:
        referer = request.headers.get("Referer")
        if not referer:
            return True
        parts = urlsplit(referer)
        claimed = f"{parts.scheme}://{parts.netloc}"
    if claimed == "null":
        return False
    claimed = claimed.rstrip("/").lower()
    base = urlsplit(base_url)
    allowed = {f"{request.scheme}://{request.host}".lower(),
               f"{base.scheme}://{base.netloc}".lower()}
    return claimed in allowed


def make_app(
    config: Config,
    store_factory: Callable[[], Store],
    clock: Callable[[], datetime] = now_utc,
    modules: Iterable[str] | None = None,
) -> WsgiApp:
    """Given the config and a function opening the state store, return a WSGI app.

    `clock` replaces the current time (tests); `modules` replaces ROUTE_MODULES.
    """
    from werkzeug.exceptions import HTTPException, NotFound, RequestEntityTooLarge
    from werkzeug.routing import Map
    from werkzeug.wrappers import Request

    url_map = Map(collect_rules(ROUTE_MODULES if modules is None else modules))
    shared: dict[str, Any] = {}

    def dispatch(request: Request) -> Response:
        adapter = url_map.bind_to_environ(request.environ)
        web = Web(config, store_factory, clock, shared)
        limit = body_limit(request.path)
        request.max_content_length = limit
        request.max_form_memory_size = limit
        try:
            if (request.content_length or 0) > limit:
                raise RequestEntityTooLarge()
            handler, values = adapter.match()
            response: Response = handler(request, web, **values)
            return response
        except NotFound:
            return plain_page(404, "Not found", "There is nothing at this address.")
        except HTTPException as error:
            return error.get_response(request.environ)
        except Exception:  # one failed request must not take the server down
            log.exception("request %s %s failed", request.method, redact_path(request.path))
            return plain_page(500, "Something went wrong",
                              "The request could not be completed. Please try again later.")
        finally:
            web.close()

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        response = dispatch(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        # Not "no-referrer": with it browsers send `Origin: null` on same-site form posts,
        # which the login's cross-site check must refuse. No page loads anything external.
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Content-Security-Policy", FRAME_POLICY)
        result: Iterable[bytes] = response(environ, start_response)
        return result

    return application


def plain_page(status: int, title: str, message: str, lang: str = "en") -> Response:
    """Return a minimal, self-contained HTML page (no scripts, no external resources)."""
    from html import escape

    from werkzeug.wrappers import Response

    body = (
        f'<!doctype html>\n<html lang="{escape(lang)}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title>{PAGE_STYLE}</head>"
        f"<body><main><h1>{escape(title)}</h1><p>{escape(message)}</p></main></body></html>\n"
    )
    response = Response(body, status=status, content_type="text/html; charset=utf-8")
    response.headers["Content-Security-Policy"] = STRICT_CSP
    return response


PAGE_STYLE = (
    "<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;"
    "padding:0 1rem;line-height:1.5;color:#222}button{font-size:1rem;padding:.6rem 1.2rem;"
    "margin:.3rem .3rem 0 0;cursor:pointer}</style>"
)

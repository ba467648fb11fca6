"""Static files for the web page, including plotly.js from the installed ``plotly`` package (no CDN)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
CACHE_A_DAY = {"Cache-Control": "public, max-age=86400"}


def plotly_js_path() -> Path | None:
    """plotly.min.js as shipped inside the Python package, found without importing plotly (slow)."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "package_data" / "plotly.min.js"
    return path if path.is_file() else None


async def plotly_js(request: Request) -> Response:
    path = plotly_js_path()
    if path is None:
        # Pages still render; only the charts are missing. Say why in the browser console.
        return PlainTextResponse(
            "console.error('plotly.min.js not found: pip install plotly');",
            status_code=404,
            media_type="text/javascript",
        )
    return FileResponse(path, media_type="text/javascript", headers=CACHE_A_DAY)


async def favicon(request: Request) -> Response:
    """Browsers ask for /favicon.ico whatever the page links: answer with the page's SVG icon."""
    return FileResponse(STATIC_DIR / "favicon.svg", media_type="image/svg+xml", headers=CACHE_A_DAY)


def asset_routes() -> list[BaseRoute]:
    return [
        Route("/favicon.ico", favicon, name="favicon"),
        Route("/vendor/plotly.min.js", plotly_js, name="plotly_js"),
        Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
    ]

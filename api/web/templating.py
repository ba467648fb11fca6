"""Jinja2 rendering for the web pages: one autoescaping environment, display filters, error pages."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from urllib.parse import urlencode

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


def format_time(ms: int | None) -> str:
    """Epoch milliseconds as a UTC timestamp a person can read; empty for a missing time."""
    if ms is None or ms == "":
        return ""
    try:
        moment = dt.datetime.fromtimestamp(int(ms) / 1000, tz=dt.UTC)
    except (ValueError, OverflowError, OSError):  # any int64 is accepted; years past 9999 are not dates
        return f"{int(ms)} ms (out of the calendar's range)"
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def format_duration(ms: int | None) -> str:
    """A duration in milliseconds as '850 ms', '12.3 s', '4 min 05 s' or '2 h 03 min'."""
    if ms is None or ms == "":
        return ""
    ms = int(ms)
    if ms < 1000:
        return f"{ms} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def format_number(value) -> str:
    """Metric values: compact but exact enough to compare runs (6 significant digits)."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):  # "NaN" and clamped infinities arrive as strings or huge floats
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if abs(value) >= 1.7976931348623157e308:
            return "∞" if value > 0 else "-∞"
        return f"{value:.6g}"
    return str(value)


def format_bytes(size: int | None) -> str:
    if size is None:
        return ""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return ""


def _query_with(request: Request, **changes) -> str:
    """The current URL's query string with some parameters replaced (None removes one)."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in changes]
    for key, value in changes.items():
        if value is None:
            continue
        if isinstance(value, list | tuple):
            params.extend((key, str(v)) for v in value)
        else:
            params.append((key, str(value)))
    return "?" + urlencode(params)


def _build_environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        # Every value is escaped; no template says otherwise. The one exception is Markup made by
        # trackledger itself: a run's description rendered by api/web/notes.py (raw HTML off).
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(time=format_time, duration=format_duration, number=format_number, bytes=format_bytes)
    env.globals["query_with"] = _query_with
    return env


ENVIRONMENT = _build_environment()


def render(request: Request, template: str, status_code: int = 200, **context) -> HTMLResponse:
    html = ENVIRONMENT.get_template(template).render(request=request, **context)
    return HTMLResponse(html, status_code=status_code)


def error_page(request: Request, status_code: int, title: str, message: str, hint: str = "") -> HTMLResponse:
    """A page for not-found and other failures: says what went wrong and where to go, no stack trace."""
    return render(request, "error.html", status_code, title=title, message=message, hint=hint)

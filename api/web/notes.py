"""A run's description (the ``mlflow.note.content`` tag, as MLflow's UI writes it) as safe HTML.

markdown-it-py with raw HTML off: ``<script>`` or ``<img onerror=...>`` in a note is shown as
text. Links must be http(s), mailto or relative to this site (no ``javascript:``, ``data:`` or
other schemes, also when hidden by entities or case); they get ``rel="noopener noreferrer
nofollow"``. Images are not rendered (a note could otherwise make every reader's browser fetch
from anywhere): ``![alt](url)`` shows as a link.
"""

from __future__ import annotations

import urllib.parse

from markdown_it import MarkdownIt
from markupsafe import Markup

NOTE_TAG = "mlflow.note.content"
LINK_SCHEMES = ("http", "https", "mailto")


def _safe_link(url: str) -> bool:
    """http(s) and mailto links, and links within this site (``/runs/...``, ``#x``, ``page``); the
    URL arrives with entities decoded and normalised by markdown-it."""
    stripped = url.strip()
    if stripped.startswith("//"):  # scheme-relative: another host
        return False
    scheme = urllib.parse.urlsplit(stripped).scheme.lower()
    return scheme in LINK_SCHEMES if scheme else ":" not in stripped.split("/", 1)[0]


def _parser() -> MarkdownIt:
    md = MarkdownIt("js-default", {"html": False, "linkify": False, "typographer": False})
    md.disable("image")
    md.validateLink = _safe_link

    def link_open(renderer, tokens, idx, options, env):
        tokens[idx].attrSet("rel", "noopener noreferrer nofollow")
        return renderer.renderToken(tokens, idx, options, env)

    md.add_render_rule("link_open", link_open)
    return md


_MARKDOWN = _parser()


def render_note(text: str | None) -> Markup:
    """The note as HTML that may be put in a page as it is (nothing in it runs)."""
    return Markup(_MARKDOWN.render(text or ""))  # raw HTML is off: every character of the text is escaped

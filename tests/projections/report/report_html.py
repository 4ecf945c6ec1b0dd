"""Reading a report's HTML back in tests: its resource references and sections."""

from __future__ import annotations

import re
from html.parser import HTMLParser

URL_ATTRS = {"src", "href", "xlink:href", "action", "formaction", "poster", "data", "srcset"}


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.refs: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.styles: list[str] = []
        self.tags: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name in URL_ATTRS and value is not None:
                self.refs.append((tag, name, value))
            if name == "style" and value:
                self.styles.append(value)
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.styles.append(data)


def resource_problems(html: str) -> list[str]:
    """Every way the page could load something from elsewhere: a URL attribute that is
    not a fragment (``#x``), ``url(...)`` or ``@import`` in a stylesheet, and any
    ``http:``/``https:`` inside a tag (outside text)."""
    parser = _Refs()
    parser.feed(html)
    out = []
    for tag, name, value in parser.refs:
        if not value.startswith("#"):
            out.append(f"<{tag} {name}={value!r}>")
    for css in parser.styles:
        for m in re.finditer(r"url\s*\(|@import", css, re.I):
            out.append(f"stylesheet: {css[m.start() : m.start() + 60]!r}")
    for tag in re.finditer(r"<[^>]*>", html):
        if re.search(r"https?:", tag.group(0), re.I):
            out.append(f"tag with a URL: {tag.group(0)[:80]!r}")
    for bad in ("link", "img", "iframe", "object", "embed", "base", "image", "use"):
        if bad in parser.tags:
            out.append(f"a <{bad}> element")
    return out


def section(html: str, name: str) -> str:
    """The text of one ``<section id=name>`` (or the header)."""
    start = html.index(f'id="{name}"')
    end = html.find("<section ", start)
    return html[start : end if end > 0 else len(html)]

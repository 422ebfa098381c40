"""The ``sequence-diagram`` directive: protocol exchanges drawn as inline SVG at build time.

Why our own directive: the site must make no request to another origin and must work offline,
so diagrams cannot come from a CDN-hosted JavaScript renderer; and the labels must be
translated, so shipping one image per language would mean keeping two copies in step. Here
each page carries its diagram as text in its own language, and the build draws it.

Syntax (see ``docs/WRITING.md``)::

    ```{sequence-diagram}
    :caption: Submission on port 587 with STARTTLS
    :participants: Client, Server

    Client -> Server: EHLO laptop.example.org
    == TLS handshake ==
    Client => Server: AUTH PLAIN ...
    ```

``->`` is a message in clear text, ``=>`` one protected by TLS, ``== text ==`` a band across
all lifelines.
"""

from __future__ import annotations

import hashlib
import html
import re
from dataclasses import dataclass

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

# Layout, in SVG user units (pixels at 100 %). Labels use a monospace font so that their
# width is known at build time without measuring text: about 0.6 em a character.
FONT_SIZE = 13
CHAR_WIDTH = 0.6 * FONT_SIZE
NAME_CHAR_WIDTH = 8.0
MARGIN = 12
BOX_HEIGHT = 30
ROW_HEIGHT = 34
BAND_HEIGHT = 26
MIN_COLUMN_GAP = 110
MIN_SCALE = 0.7

LEGEND = {
    "en": ("clear text", "protected by TLS"),
    "es": ("texto en claro", "protegido con TLS"),
}

MESSAGE = re.compile(r"^(?P<src>[^-=>:]+?)\s*(?P<arrow>->|=>)\s*(?P<dst>[^:]+?)\s*:\s*(?P<label>.*)$")
BAND = re.compile(r"^==\s*(?P<label>.*?)\s*==$")


@dataclass
class Message:
    source: int
    target: int
    label: str
    protected: bool


@dataclass
class Band:
    label: str


class DiagramError(ValueError):
    """A line of a diagram that cannot be drawn; the message says which and why."""


def parse(participants: list[str], lines: list[str]) -> list[Message | Band]:
    """Turn the directive's lines into rows, checking every name against the participants."""
    index = {name: i for i, name in enumerate(participants)}
    rows: list[Message | Band] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        if band := BAND.match(line):
            rows.append(Band(band["label"]))
            continue
        message = MESSAGE.match(line)
        if not message:
            raise DiagramError(
                f"line {number}: expected 'A -> B: label', 'A => B: label' or '== text ==': {line!r}"
            )
        for end in ("src", "dst"):
            if message[end] not in index:
                raise DiagramError(
                    f"line {number}: {message[end]!r} is not one of the participants {participants}"
                )
        if message["src"] == message["dst"]:
            raise DiagramError(f"line {number}: a message needs two different participants")
        rows.append(
            Message(index[message["src"]], index[message["dst"]], message["label"], message["arrow"] == "=>")
        )
    if not rows:
        raise DiagramError("the diagram has no messages")
    return rows


def column_gaps(count: int, rows: list[Message | Band], box_width: float) -> list[float]:
    """Distance between each pair of neighbouring lifelines: wide enough for the labels between them.

    Each gap is sized separately, so one long label does not widen the whole diagram.
    """
    gaps = [max(float(MIN_COLUMN_GAP), box_width + 16)] * (count - 1)
    messages = sorted((r for r in rows if isinstance(r, Message)), key=lambda m: abs(m.target - m.source))
    for message in messages:  # single-gap messages first; wider ones then share what is missing
        first, last = sorted((message.source, message.target))
        missing = len(message.label) * CHAR_WIDTH + 36 - sum(gaps[first:last])
        if missing > 0:
            for i in range(first, last):
                gaps[i] += missing / (last - first)
    return gaps


def render_svg(participants: list[str], rows: list[Message | Band], title: str, language: str,
               uid: str) -> str:
    """Draw the diagram. Colours come from CSS classes, so light and dark themes both work.

    ``uid`` prefixes the SVG's element ids (arrow markers, title), which must be unique in the page.
    """
    box_width = max(90.0, max(len(p) for p in participants) * NAME_CHAR_WIDTH + 24)
    gaps = column_gaps(len(participants), rows, box_width)
    span_width = box_width + sum(gaps)
    band_width = max((len(r.label) * CHAR_WIDTH + 40 for r in rows if isinstance(r, Band)), default=0)
    width = max(2 * MARGIN + span_width, band_width + 2 * MARGIN)
    left = (width - span_width) / 2
    xs = [left + box_width / 2 + sum(gaps[:i]) for i in range(len(participants))]

    parts: list[str] = []
    y = MARGIN + BOX_HEIGHT
    body: list[str] = []
    y += 12
    for row in rows:
        if isinstance(row, Band):
            body.append(
                f'<rect class="seq-band" x="{MARGIN}" y="{y + 4}" width="{width - 2 * MARGIN:.1f}" '
                f'height="{BAND_HEIGHT - 8}" rx="4"/>'
                f'<text class="seq-band-label" x="{width / 2:.1f}" y="{y + BAND_HEIGHT / 2 + 4:.1f}" '
                f'text-anchor="middle">{html.escape(row.label)}</text>'
            )
            y += BAND_HEIGHT
            continue
        y += ROW_HEIGHT
        kind = "tls" if row.protected else "clear"
        x1, x2 = xs[row.source], xs[row.target]
        direction = 1 if x2 > x1 else -1
        body.append(
            f'<g class="seq-message seq-{kind}">'
            f'<line x1="{x1:.1f}" y1="{y - 8}" x2="{x2 - direction * 2:.1f}" y2="{y - 8}" '
            f'marker-end="url(#{uid}-{kind})"/>'
            f'<text x="{(x1 + x2) / 2:.1f}" y="{y - 14}" text-anchor="middle">{html.escape(row.label)}</text>'
            "</g>"
        )
    legend_y = y + 22
    height = legend_y + 12

    parts.append(
        f'<svg class="sequence-diagram" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'aria-labelledby="{uid}-title" viewBox="0 0 {width:.1f} {height:.1f}" '
        f'width="{width:.0f}" height="{height:.0f}" font-size="{FONT_SIZE}" '
        # Narrow screens may shrink a diagram to 70 %; below that it scrolls, so text stays legible.
        f'style="min-width: {width * MIN_SCALE:.0f}px">'
        f'<title id="{uid}-title">{html.escape(title)}</title>'
        "<defs>"
    )
    for kind in ("clear", "tls"):
        parts.append(
            f'<marker id="{uid}-{kind}" class="seq-{kind}" viewBox="0 0 10 10" refX="9" refY="5" '
            'markerUnits="userSpaceOnUse" markerWidth="10" markerHeight="10" orient="auto-start-reverse">'
            '<path class="seq-arrowhead" d="M 0 0 L 10 5 L 0 10 z"/></marker>'
        )
    parts.append("</defs>")
    for x, name in zip(xs, participants, strict=True):
        parts.append(
            f'<line class="seq-lifeline" x1="{x:.1f}" y1="{MARGIN + BOX_HEIGHT}" x2="{x:.1f}" y2="{y + 6}"/>'
            f'<rect class="seq-participant" x="{x - box_width / 2:.1f}" y="{MARGIN}" '
            f'width="{box_width:.1f}" height="{BOX_HEIGHT}" rx="4"/>'
            f'<text class="seq-participant-label" x="{x:.1f}" y="{MARGIN + BOX_HEIGHT / 2 + 5}" '
            f'text-anchor="middle">{html.escape(name)}</text>'
        )
    parts.extend(body)
    clear_text, tls_text = LEGEND.get(language, LEGEND["en"])
    parts.append(
        f'<g class="seq-legend"><g class="seq-message seq-clear"><line x1="{MARGIN}" y1="{legend_y - 4}" '
        f'x2="{MARGIN + 30}" y2="{legend_y - 4}"/></g>'
        f'<text x="{MARGIN + 36}" y="{legend_y}">{html.escape(clear_text)}</text>'
        f'<g class="seq-message seq-tls"><line x1="{MARGIN + 60 + len(clear_text) * CHAR_WIDTH:.1f}" '
        f'y1="{legend_y - 4}" x2="{MARGIN + 90 + len(clear_text) * CHAR_WIDTH:.1f}" y2="{legend_y - 4}"/></g>'
        f'<text x="{MARGIN + 96 + len(clear_text) * CHAR_WIDTH:.1f}" y="{legend_y}">'
        f"{html.escape(tls_text)}</text></g>"
    )
    parts.append("</svg>")
    return "".join(parts)


class SequenceDiagram(SphinxDirective):
    """Draw a message exchange between named participants (see the module docstring)."""

    has_content = True
    option_spec = {
        "caption": directives.unchanged_required,
        "participants": directives.unchanged_required,
        "name": directives.unchanged,
    }

    def run(self) -> list[nodes.Node]:
        participants = [p.strip() for p in self.options.get("participants", "").split(",") if p.strip()]
        if len(participants) < 2:
            raise self.error(
                "sequence-diagram: ':participants:' needs at least two names, separated by commas"
            )
        if len(set(participants)) != len(participants):
            raise self.error(f"sequence-diagram: participant names must be unique: {participants}")
        caption = self.options.get("caption", "")
        if not caption:
            raise self.error(
                "sequence-diagram: a ':caption:' is required (it is also the SVG's accessible title)"
            )
        try:
            rows = parse(participants, list(self.content))
        except DiagramError as error:
            raise self.error(f"sequence-diagram: {error}") from None

        # Ids derived from the page and line, so that rebuilds produce the same HTML.
        uid = "seq-" + hashlib.sha1(f"{self.env.docname}:{self.lineno}".encode()).hexdigest()[:10]
        svg = render_svg(participants, rows, caption, self.config.language or "en", uid)
        figure = nodes.figure(classes=["sequence-diagram-figure"])
        figure += nodes.raw("", f'<div class="sequence-diagram-scroll">{svg}</div>', format="html")
        inline, messages = self.state.inline_text(caption, self.lineno)
        figure += nodes.caption(caption, "", *inline)
        self.add_name(figure)
        return [figure, *messages]


def setup(app: Sphinx) -> dict[str, object]:
    app.add_directive("sequence-diagram", SequenceDiagram)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}

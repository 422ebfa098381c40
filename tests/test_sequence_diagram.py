"""The sequence-diagram directive: what it accepts, what it refuses, what it draws."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET

import pytest

from course import DOCS

sys.path.insert(0, str(DOCS / "_ext"))
from sequence_diagram import Band, DiagramError, Message, parse, render_svg  # noqa: E402

SVG = "{http://www.w3.org/2000/svg}"


def test_parses_clear_and_protected_messages_and_bands() -> None:
    rows = parse(["Client", "Server"], ["Client -> Server: EHLO a",
                                        "== TLS handshake ==", "Server => Client: 250 ok", ""])
    assert rows == [Message(0, 1, "EHLO a", False), Band("TLS handshake"), Message(1, 0, "250 ok", True)]


@pytest.mark.parametrize(
    ("line", "complaint"),
    [
        ("Client -> Mallory: hi", "not one of the participants"),
        ("Client -> Client: hi", "two different participants"),
        ("Client talks to Server", "expected"),
    ],
)
def test_refuses_lines_it_cannot_draw(line: str, complaint: str) -> None:
    with pytest.raises(DiagramError, match=complaint):
        parse(["Client", "Server"], [line])


def test_draws_valid_svg_with_labels_and_legend() -> None:
    rows = parse(["Cliente", "Servidor"], ["Cliente -> Servidor: STARTTLS",
                                          "Servidor => Cliente: 220 <ok> & go"])
    svg = render_svg(["Cliente", "Servidor"], rows, "Título", "es", "seq-test")
    root = ET.fromstring(svg)  # well-formed XML, labels escaped
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert {"Cliente", "Servidor", "STARTTLS", "220 <ok> & go",
            "texto en claro", "protegido con TLS"} <= set(texts)
    assert root.find(f"{SVG}title").text == "Título"
    kinds = [g.get("class") for g in root.iter(f"{SVG}g") if "seq-message" in (g.get("class") or "")]
    assert kinds[:2] == ["seq-message seq-clear", "seq-message seq-tls"]

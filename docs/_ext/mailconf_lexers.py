"""Pygments lexers for the configuration languages the course shows.

Why: the fence language of a code block says *which* file it belongs to (``postfix-main``,
``postfix-master``, ``postfix-map``, ``dovecot``, ``dovecot24``). The highlighter colours it,
and the tests read the same names to check every setting against the real ``postconf -d`` and
``doveconf -d`` (see ``tests/test_accuracy.py``).
"""

from __future__ import annotations

from pygments.lexer import RegexLexer, bygroups
from pygments.token import Comment, Keyword, Name, Operator, Punctuation, String, Text, Whitespace
from sphinx.application import Sphinx


class PostfixMainLexer(RegexLexer):
    """``main.cf``: ``name = value`` lines, ``$name`` expansions, indented continuation lines."""

    name = "Postfix main.cf"
    aliases = ["postfix-main"]
    tokens = {
        "root": [
            (r"^\s*#.*\n", Comment.Single),
            (r"^([A-Za-z0-9_]+)(\s*)(=)", bygroups(Name.Attribute, Whitespace, Operator), "value"),
            (r"\n", Whitespace),
            (r"[^\n]+", Text),
        ],
        "value": [
            (r"\$\{?[A-Za-z0-9_]+\}?", Name.Variable),
            (r"[^$\n]+", String),
            (r"\$", String),
            (r"\n(?=[ \t]+\S)", Whitespace),  # a continuation line belongs to the same value
            (r"\n", Whitespace, "#pop"),
        ],
    }


class PostfixMasterLexer(RegexLexer):
    """``master.cf``: service lines and their ``-o name=value`` overrides."""

    name = "Postfix master.cf"
    aliases = ["postfix-master"]
    tokens = {
        "root": [
            (r"^\s*#.*\n", Comment.Single),
            (
                r"(-o)(\s+)(\{?)([A-Za-z0-9_]+)(\s*=)",
                bygroups(Keyword, Whitespace, Punctuation, Name.Attribute, Operator),
            ),
            (r"\$\{?[A-Za-z0-9_]+\}?", Name.Variable),
            (r"^[A-Za-z0-9_.:\[\]-]+", Name.Function),  # the service name
            (r"\s+", Whitespace),
            (r"\S", Text),
        ],
    }


class PostfixMapLexer(RegexLexer):
    """Lookup tables such as ``tls_policy``: a key, then a value (here a TLS level and attributes)."""

    name = "Postfix lookup table"
    aliases = ["postfix-map"]
    tokens = {
        "root": [
            (r"^\s*#.*\n", Comment.Single),
            (r"^(\S+)(\s+)(\S+)", bygroups(Name.Label, Whitespace, Keyword)),
            (r"([a-z_]+)(=)(\S+)", bygroups(Name.Attribute, Operator, String)),
            (r"\s+", Whitespace),
            (r"\S", Text),
        ],
    }


class DovecotLexer(RegexLexer):
    """``dovecot.conf`` (2.3 and 2.4 share the syntax): settings, ``<file`` values, sections."""

    name = "Dovecot configuration"
    aliases = ["dovecot", "dovecot24"]
    tokens = {
        "root": [
            (r"^\s*#.*\n", Comment.Single),
            (r"(\s*)([A-Za-z0-9_]+)(\s*)(=)(\s*)(<?)([^\n]*)",
             bygroups(Whitespace, Name.Attribute, Whitespace, Operator, Whitespace, Operator, String)),
            (r"(\s*)([A-Za-z0-9_]+)(\s+)([^{\s]*)(\s*)(\{)",
             bygroups(Whitespace, Keyword, Whitespace, Name.Label, Whitespace, Punctuation)),
            (r"(\s*)([A-Za-z0-9_]+)(\s*)(\{)", bygroups(Whitespace, Keyword, Whitespace, Punctuation)),
            (r"[{}]", Punctuation),
            (r"\s+", Whitespace),
            (r"\S+", Text),
        ],
    }


def setup(app: Sphinx) -> dict[str, object]:
    for lexer in (PostfixMainLexer, PostfixMasterLexer, PostfixMapLexer):
        app.add_lexer(lexer.aliases[0], lexer)
    app.add_lexer("dovecot", DovecotLexer)
    app.add_lexer("dovecot24", DovecotLexer)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}

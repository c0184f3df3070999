"""The list-filter language: text → validated AST, and evaluation of that AST on one record.

Grammar (a subset of AIP-160, the one Grafeas clients use)::

    filter     := or
    or         := and ("OR" and)*
    and        := unary ("AND" unary)*
    unary      := "NOT" unary | "-" unary | "(" or ")" | comparison
    comparison := FIELD ("=" | "!=") VALUE
    VALUE      := "double-quoted string" | bare-word

Fields (``resource_url`` style spellings are accepted too):

* occurrences: ``kind``, ``resourceUrl``, ``noteProjectId``, ``noteId``, ``noteName``;
* notes: ``kind``, ``noteProjectId``, ``noteId``, ``noteName``.

Values are normalised at parse time: ``resourceUrl`` to the canonical image identity,
``noteName`` into project and note ID, ``kind`` checked against the Grafeas kinds. The AST
only ever compares the indexed columns of :class:`FilterColumn`, so storage adapters turn it
into parameterised queries without ever seeing user text in SQL.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeAlias

from chainproof.domain.bounds import check_indexed_text, check_text
from chainproof.domain.images import canonical_resource
from chainproof.domain.kinds import KIND_NAMES
from chainproof.domain.names import parse_note_name
from chainproof.errors import InvalidArgument

MAX_FILTER_LENGTH = 8192
MAX_DEPTH = 64


class FilterColumn(enum.Enum):
    """The indexed columns a filter may compare."""

    KIND = "kind"
    RESOURCE = "resource"
    NOTE_PROJECT = "note_project"
    NOTE_ID = "note_id"


class Target(enum.Enum):
    NOTES = "notes"
    OCCURRENCES = "occurrences"


@dataclass(frozen=True, slots=True)
class Compare:
    column: FilterColumn
    value: str
    negated: bool = False


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Expr


Expr: TypeAlias = Compare | And | Or | Not

_FIELD_ALIASES: dict[str, str] = {
    "kind": "kind",
    "resourceUrl": "resourceUrl",
    "resource_url": "resourceUrl",
    "resourceUri": "resourceUrl",
    "resource_uri": "resourceUrl",
    "noteProjectId": "noteProjectId",
    "note_project_id": "noteProjectId",
    "noteId": "noteId",
    "note_id": "noteId",
    "noteName": "noteName",
    "note_name": "noteName",
}
_FIELDS_BY_TARGET: dict[Target, tuple[str, ...]] = {
    Target.OCCURRENCES: ("kind", "resourceUrl", "noteProjectId", "noteId", "noteName"),
    Target.NOTES: ("kind", "noteProjectId", "noteId", "noteName"),
}

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<lparen>\() | (?P<rparen>\)) | (?P<op>!=|=) |
        (?P<string>"(?:[^"\\]|\\.)*") |
        (?P<word>[^\s()"=!<>]+) |
        (?P<bad>\S)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str
    text: str
    pos: int


def _tokenize(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            break
        kind = m.lastgroup or "bad"
        start = m.start(kind)
        if kind == "bad":
            raise InvalidArgument(
                f"filter has an unexpected character {m.group(kind)!r} at position {start + 1}: "
                'expected a comparison such as kind="ATTESTATION"'
            )
        toks.append(_Tok(kind, m.group(kind), start))
        pos = m.end()
    return toks


def _unquote(raw: str, pos: int) -> str:
    body = raw[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            nxt = body[i + 1]
            if nxt not in '"\\':
                raise InvalidArgument(
                    f"filter string at position {pos + 1} has an unknown escape '\\{nxt}': "
                    'only \\" and \\\\ are allowed'
                )
            out.append(nxt)
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


class _Parser:
    def __init__(self, text: str, target: Target) -> None:
        self.text = text
        self.target = target
        self.toks = _tokenize(text)
        self.i = 0
        self.depth = 0

    def _peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def _where(self, tok: _Tok | None) -> str:
        return "at the end" if tok is None else f"at position {tok.pos + 1} ({tok.text!r})"

    def parse(self) -> Expr:
        expr = self._or()
        tok = self._peek()
        if tok is not None:
            raise InvalidArgument(
                f"filter could not be parsed {self._where(tok)}: expected AND, OR or the end "
                "of the filter"
            )
        return expr

    def _is_word(self, tok: _Tok | None, word: str) -> bool:
        return tok is not None and tok.kind == "word" and tok.text == word

    def _or(self) -> Expr:
        items = [self._and()]
        while self._is_word(self._peek(), "OR"):
            self.i += 1
            items.append(self._and())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def _and(self) -> Expr:
        items = [self._unary()]
        while self._is_word(self._peek(), "AND"):
            self.i += 1
            items.append(self._unary())
        return items[0] if len(items) == 1 else And(tuple(items))

    def _unary(self) -> Expr:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise InvalidArgument(f"filter nests deeper than {MAX_DEPTH} levels")
        try:
            tok = self._peek()
            if self._is_word(tok, "NOT") or (tok is not None and tok.text == "-"):
                self.i += 1
                return Not(self._unary())
            if tok is not None and tok.kind == "lparen":
                self.i += 1
                inner = self._or()
                close = self._peek()
                if close is None or close.kind != "rparen":
                    raise InvalidArgument(
                        f"filter has an unclosed '(' {self._where(close)}: expected ')'"
                    )
                self.i += 1
                return inner
            return self._comparison()
        finally:
            self.depth -= 1

    def _comparison(self) -> Expr:
        field_tok = self._peek()
        if field_tok is None or field_tok.kind != "word":
            raise InvalidArgument(
                f"filter expected a field name {self._where(field_tok)}: one of "
                + ", ".join(_FIELDS_BY_TARGET[self.target])
            )
        self.i += 1
        op_tok = self._peek()
        if op_tok is None or op_tok.kind != "op":
            raise InvalidArgument(
                f"filter expected '=' or '!=' after {field_tok.text!r} {self._where(op_tok)}; "
                "other operators (such as ':', '<' or '>') are not supported"
            )
        self.i += 1
        val_tok = self._peek()
        if val_tok is None or val_tok.kind not in ("string", "word"):
            raise InvalidArgument(
                f"filter expected a value after {field_tok.text}{op_tok.text} "
                f"{self._where(val_tok)}: a double-quoted string or a bare word"
            )
        self.i += 1
        value = _unquote(val_tok.text, val_tok.pos) if val_tok.kind == "string" else val_tok.text
        return _build(self.target, field_tok.text, value, negated=op_tok.text == "!=")


def _build(target: Target, field: str, value: str, *, negated: bool) -> Expr:
    check_indexed_text(value, f"filter value of {field}")
    canonical = _FIELD_ALIASES.get(field)
    allowed = _FIELDS_BY_TARGET[target]
    if canonical not in allowed:
        raise InvalidArgument(
            f"filter field {field!r} is not supported on {target.value}: "
            f"expected one of {', '.join(allowed)}"
        )
    if canonical == "kind":
        if value not in KIND_NAMES:
            raise InvalidArgument(
                f"filter kind {value!r} is not a Grafeas kind: expected one of "
                + ", ".join(sorted(KIND_NAMES))
            )
        return Compare(FilterColumn.KIND, value, negated)
    if canonical == "resourceUrl":
        return Compare(FilterColumn.RESOURCE, canonical_resource(value), negated)
    if canonical == "noteProjectId":
        return Compare(FilterColumn.NOTE_PROJECT, value, negated)
    if canonical == "noteId":
        return Compare(FilterColumn.NOTE_ID, value, negated)
    note = parse_note_name(value, field="filter noteName")
    both = And(
        (
            Compare(FilterColumn.NOTE_PROJECT, note.project),
            Compare(FilterColumn.NOTE_ID, note.note_id),
        )
    )
    return Not(both) if negated else both


def parse_filter(text: str | None, target: Target) -> Expr | None:
    """Parse a filter; an empty or blank filter means "everything" and returns None."""
    if text is None or not text.strip():
        return None
    if len(text) > MAX_FILTER_LENGTH:
        raise InvalidArgument(
            f"filter is {len(text)} characters long: at most {MAX_FILTER_LENGTH} are accepted"
        )
    check_text(text, "filter")
    return _Parser(text, target).parse()


def evaluate(expr: Expr | None, column_value: Callable[[FilterColumn], str]) -> bool:
    """Does a record match? ``column_value`` gives the record's value for each column."""
    if expr is None:
        return True
    if isinstance(expr, Compare):
        return (column_value(expr.column) == expr.value) != expr.negated
    if isinstance(expr, And):
        return all(evaluate(e, column_value) for e in expr.items)
    if isinstance(expr, Or):
        return any(evaluate(e, column_value) for e in expr.items)
    return not evaluate(expr.item, column_value)


def render(expr: Expr | None) -> str:
    """A canonical text form of the AST; equal filters render equally (used in page tokens)."""
    if expr is None:
        return ""
    if isinstance(expr, Compare):
        return f"{expr.column.value}{'!=' if expr.negated else '='}{expr.value!r}"
    if isinstance(expr, And):
        return "(" + " AND ".join(render(e) for e in expr.items) + ")"
    if isinstance(expr, Or):
        return "(" + " OR ".join(render(e) for e in expr.items) + ")"
    return f"NOT {render(expr.item)}"

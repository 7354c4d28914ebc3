"""A small GraphQL reader for the gateway queries aoconnect, scheduler-utils and aos send (spec §2.4).

It parses one query document (operation with variable definitions, fields with
aliases, arguments and selection sets; literals, lists, objects and $variables),
and answers the root fields `transactions(...)` and `transaction(id:)` over
the node's gateway index. The answer holds exactly the fields that were asked
for. Anything it cannot read is a GraphQLError (the server answers 400).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_QUERY_CHARS = 64 * 1024
MAX_DEPTH = 16
MAX_IDS = 1000


class GraphQLError(ValueError):
    """A query this gateway cannot read or answer."""


@dataclass
class Field:
    name: str
    alias: str
    args: dict = field(default_factory=dict)
    selections: list[Field] | None = None


@dataclass
class Var:
    name: str


@dataclass
class Enum:
    name: str


_TOKEN = re.compile(r"""
    (?P<ws>[\s,\ufeff]+|\#[^\n\r]*)
  | (?P<block>\"\"\"(?:[^"\\]|\\.|"(?!""))*\"\"\")
  | (?P<str>"(?:[^"\\\n\r]|\\.)*")
  | (?P<num>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<name>[_A-Za-z][_0-9A-Za-z]*)
  | (?P<spread>\.\.\.)
  | (?P<punct>[!$():=@\[\]{}|&])
""", re.VERBOSE)

_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def _unescape(body: str) -> str:
    out = []
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        nxt = body[i + 1:i + 2]
        if nxt == "u":
            hexa = body[i + 2:i + 6]
            if not re.fullmatch(r"[0-9A-Fa-f]{4}", hexa):
                raise GraphQLError("bad \\u escape in a string")
            out.append(chr(int(hexa, 16)))
            i += 6
        elif nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        else:
            raise GraphQLError(f"bad escape \\{nxt} in a string")
    return "".join(out)


def tokenize(text: str) -> list[tuple[str, object]]:
    if not isinstance(text, str):
        raise GraphQLError("the query must be a string")
    if len(text) > MAX_QUERY_CHARS:
        raise GraphQLError(f"query longer than {MAX_QUERY_CHARS} characters")
    tokens: list[tuple[str, object]] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise GraphQLError(f"unexpected character {text[pos]!r} at offset {pos}")
        pos = m.end()
        kind = m.lastgroup
        value = m.group()
        if kind == "ws":
            continue
        if kind == "block":
            tokens.append(("str", value[3:-3].replace('\\"""', '"""')))
        elif kind == "str":
            tokens.append(("str", _unescape(value[1:-1])))
        elif kind == "num":
            tokens.append(("num", float(value) if any(c in value for c in ".eE") else int(value)))
        else:
            tokens.append((kind, value))
    return tokens


class _Parser:
    def __init__(self, text: str, variables: dict) -> None:
        self.toks = tokenize(text)
        self.i = 0
        self.variables = variables

    def peek(self, value: str | None = None, kind: str | None = None) -> bool:
        if self.i >= len(self.toks):
            return False
        k, v = self.toks[self.i]
        return (value is None or v == value) and (kind is None or k == kind)

    def take(self, value: str | None = None, kind: str | None = None) -> object:
        if not self.peek(value, kind):
            got = self.toks[self.i][1] if self.i < len(self.toks) else "the end of the query"
            raise GraphQLError(f"expected {value or kind}, found {got!r}")
        self.i += 1
        return self.toks[self.i - 1][1]

    def document(self) -> list[Field]:
        ops = []
        while self.i < len(self.toks):
            if self.peek("{"):
                ops.append(self.selection_set(0))
                continue
            word = self.take(kind="name")
            if word == "fragment":
                raise GraphQLError("fragments are not supported by this gateway")
            if word not in ("query",):
                raise GraphQLError(f"only queries are supported, not {word!r}")
            if self.peek(kind="name"):
                self.take(kind="name")
            if self.peek("("):
                self.variable_definitions()
            ops.append(self.selection_set(0))
        if len(ops) != 1:
            raise GraphQLError("send exactly one query operation")
        return ops[0]

    def variable_definitions(self) -> None:
        self.take("(")
        while not self.peek(")"):
            self.take("$")
            name = self.take(kind="name")
            self.take(":")
            self.type_ref()
            if self.peek("="):
                self.take("=")
                default = self.value(0, const=True)
                self.variables.setdefault(name, default)
        self.take(")")

    def type_ref(self) -> None:
        if self.peek("["):
            self.take("[")
            self.type_ref()
            self.take("]")
        else:
            self.take(kind="name")
        if self.peek("!"):
            self.take("!")

    def selection_set(self, depth: int) -> list[Field]:
        if depth > MAX_DEPTH:
            raise GraphQLError("query nested too deeply")
        self.take("{")
        out = []
        while not self.peek("}"):
            if self.peek(kind="spread"):
                raise GraphQLError("fragments are not supported by this gateway")
            name = self.take(kind="name")
            alias = name
            if self.peek(":"):
                self.take(":")
                name = self.take(kind="name")
            args = self.arguments(depth) if self.peek("(") else {}
            while self.peek("@"):
                raise GraphQLError("directives are not supported by this gateway")
            sel = self.selection_set(depth + 1) if self.peek("{") else None
            out.append(Field(name, alias, args, sel))
        self.take("}")
        return out

    def arguments(self, depth: int) -> dict:
        self.take("(")
        args = {}
        while not self.peek(")"):
            name = self.take(kind="name")
            self.take(":")
            args[name] = self.value(depth)
        self.take(")")
        return args

    def value(self, depth: int, const: bool = False) -> object:
        if depth > MAX_DEPTH:
            raise GraphQLError("value nested too deeply")
        if self.peek("$"):
            if const:
                raise GraphQLError("a default value cannot name a variable")
            self.take("$")
            return Var(self.take(kind="name"))
        if self.peek("["):
            self.take("[")
            items = []
            while not self.peek("]"):
                items.append(self.value(depth + 1, const))
            self.take("]")
            return items
        if self.peek("{"):
            self.take("{")
            obj = {}
            while not self.peek("}"):
                key = self.take(kind="name")
                self.take(":")
                obj[key] = self.value(depth + 1, const)
            self.take("}")
            return obj
        if self.peek(kind="str"):
            return self.take(kind="str")
        if self.peek(kind="num"):
            return self.take(kind="num")
        word = self.take(kind="name")
        if word in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[word]
        return Enum(word)


def _resolve(value: object, variables: dict) -> object:
    if isinstance(value, Var):
        return variables.get(value.name)
    if isinstance(value, Enum):
        return value.name
    if isinstance(value, list):
        return [_resolve(v, variables) for v in value]
    if isinstance(value, dict):
        return {k: _resolve(v, variables) for k, v in value.items()}
    return value


def parse(query: str, variables: dict | None = None) -> list[Field]:
    """The root selection set of `query`, with every argument's variables filled in."""
    if variables is not None and not isinstance(variables, dict):
        raise GraphQLError("variables must be a JSON object")
    variables = dict(variables or {})
    parser = _Parser(query, variables)
    root = parser.document()

    def fill(fields: list[Field]) -> None:
        for f in fields:
            f.args = {k: _resolve(v, variables) for k, v in f.args.items()}
            if f.selections:
                fill(f.selections)
    fill(root)
    return root


# -- arguments ------------------------------------------------------------------------------------

def _str_list(value: object, what: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise GraphQLError(f"{what} must be a list of strings")
    if len(value) > MAX_IDS:
        raise GraphQLError(f"{what}: at most {MAX_IDS} values")
    return value


@dataclass
class TxQuery:
    ids: list[str] | None = None
    owners: list[str] | None = None
    recipients: list[str] | None = None
    tags: list[tuple[str, list[str], bool]] = field(default_factory=list)   # (name, values, negated)
    sort: str = "HEIGHT_DESC"
    first: int = 10
    after: int = 0


def tx_query(args: dict) -> TxQuery:
    known = {"ids", "owners", "recipients", "tags", "sort", "first", "after", "block", "bundledIn", "ingested_at"}
    unknown = set(args) - known
    if unknown:
        raise GraphQLError(f"unknown argument(s) of transactions: {', '.join(sorted(unknown))}")
    q = TxQuery(ids=_str_list(args.get("ids"), "ids"), owners=_str_list(args.get("owners"), "owners"),
                recipients=_str_list(args.get("recipients"), "recipients"))
    tags = args.get("tags")
    if tags is not None:
        if isinstance(tags, dict):
            tags = [tags]
        if not isinstance(tags, list) or len(tags) > 64:
            raise GraphQLError("tags must be a list of {name, values} filters")
        for t in tags:
            if not isinstance(t, dict) or not isinstance(t.get("name"), str):
                raise GraphQLError("each tag filter needs a string name")
            values = _str_list(t.get("values"), f"values of tag filter {t.get('name')!r}")
            if not values:
                raise GraphQLError(f"tag filter {t['name']!r} needs values")
            op = t.get("op", "EQ")
            if op not in ("EQ", "NEQ"):
                raise GraphQLError(f"tag filter op must be EQ or NEQ, not {op!r}")
            q.tags.append((t["name"], values, op == "NEQ"))
    sort = args.get("sort", "HEIGHT_DESC")
    if sort is None:
        sort = "HEIGHT_DESC"
    if sort not in ("HEIGHT_DESC", "HEIGHT_ASC", "INGESTED_AT_DESC", "INGESTED_AT_ASC"):
        raise GraphQLError(f"sort must be HEIGHT_DESC or HEIGHT_ASC, not {sort!r}")
    q.sort = "ASC" if sort.endswith("_ASC") else "DESC"
    first = args.get("first", 10)
    if first is None:
        first = 10
    if not isinstance(first, int) or isinstance(first, bool) or first < 0:
        raise GraphQLError("first must be a non-negative integer")
    q.first = min(first, 100)
    after = args.get("after")
    if after not in (None, ""):
        q.after = decode_cursor(after)
    return q


def encode_cursor(offset: int) -> str:
    return f"aospy:{offset}"


def decode_cursor(cursor: object) -> int:
    if isinstance(cursor, str) and cursor.startswith("aospy:") and cursor[6:].isdigit() and len(cursor) < 32:
        return int(cursor[6:])
    raise GraphQLError(f"bad cursor {str(cursor)[:60]!r}: use a cursor from an earlier answer")


def project(value: object, selections: list[Field] | None) -> object:
    """Keep the asked-for fields of `value` (a dict, a list of dicts, or a scalar)."""
    if selections is None or value is None:
        return value
    if isinstance(value, list):
        return [project(v, selections) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for f in selections:
        if f.name == "__typename":
            out[f.alias] = value.get("__typename", "Object")
            continue
        out[f.alias] = project(value.get(f.name), f.selections)
    return out

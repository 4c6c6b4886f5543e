"""Reading the JSON value out of a model's reply, repairing it locally where it can.

`parse_json_text(text)` returns a `ParsedText` (the value, whether it parsed as is, and how
many brackets were still open where the text ended) or raises `NotRecoverable(reason)`.
Cheapest first:
1. strip code fences, `json.loads`;
2. a reply that is JSON encoded again as a string (`"{\\"scene\\": ...}"`, escaped quotes,
   the whole reply or a string after some prose, perhaps cut off) is decoded one level and
   read from step 1 again (at most three levels); when the text's first bracket is not
   inside that string (prose with brackets before it), only after step 3;
3. each bracketed segment of the text (the prose around it ignored): strict parsing (raw
   newlines in strings allowed), Python literals (never two strings in a row joined into
   one), single quotes and bare keys re-quoted; the same on the text with its full-width
   structure made ASCII (`ascii_structure`: ｛ ［ ： ， 、 “ ” ‘ ’, full-width digits and
   spaces outside strings; what is inside a string value is kept as it is);
4. `json_repair` on each segment that is still unread.
A step ends the search only with a value that holds a frame annotation; several frames
written one object per image ("Image 1: {...} Image 2: {...}") are read as a list.
"""

from __future__ import annotations

import ast
import io
import json
import re
import tokenize
import unicodedata
from dataclasses import dataclass
from typing import Any

import json_repair

from skyscript_assets.stages.annotation.normalise import looks_like_frame


@dataclass(frozen=True)
class ParsedText:
    value: Any
    as_is: bool  # json.loads took the text after stripping whitespace and code fences
    open_depth: int  # brackets still open where the text ends: > 0 means it was cut off


class NotRecoverable(ValueError):
    """The text holds no JSON annotation that local repair can get back; args[0] is the reason."""


_FENCE = re.compile(r"```[a-zA-Z0-9_-]*\s*\n?(.*?)(?:```|$)", re.DOTALL)
_MAX_CANDIDATES = 16  # bracketed segments looked at: enough for one object per image of a batch
_MAX_NESTING = 32  # brackets: a frame list of people with their emotions is 5 deep
_BRACKET_OR_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\]]')
_MAX_ENCODINGS = 3  # JSON encoded as a string inside JSON encoded as a string ... at most this deep
# A bare key after "{" or ",": `Scene Description: "..."` -> `"Scene Description": "..."`.
_BARE_KEY = re.compile(r"(?<=[{,])(\s*)([A-Za-z_\u4e00-\u9fff][^\"'{}\[\],:\n]*?)(\s*):")


def strip_code_fences(text: str) -> str:
    """The fenced blocks' contents (one per line when a model fenced each image), else the text."""
    blocks = [block.strip() for block in _FENCE.findall(text)]
    return "\n".join(block for block in blocks if block) if blocks else text.strip()


def json_segments(text: str) -> list[tuple[str, int]]:
    """Bracketed segments of `text`, first opening bracket to its match, with the depth still
    open at the end (> 0 when the text stops inside the segment). Only double quotes open
    strings: single-quoted output is rare and its apostrophes would confuse the count."""
    segments = []
    start = 0
    while len(segments) < _MAX_CANDIDATES:
        begin = _next_opening(text, start)
        if begin < 0:
            break
        depth, in_string, escaped, end = 0, False, False, None
        for i in range(begin, len(text)):
            ch = text[i]
            if in_string:
                if escaped:
                    escaped = False
                elif ch == "\\":
                    escaped = True
                elif ch == '"':
                    in_string = False
            elif ch == '"':
                in_string = True
            elif ch in "{[":
                depth += 1
            elif ch in "}]":
                depth -= 1
                if depth == 0:
                    end = i + 1
                    break
        if end is None:
            segments.append((text[begin:], depth))
            break
        segments.append((text[begin:end], 0))
        start = end
    return segments


def _next_opening(text: str, start: int) -> int:
    positions = [p for p in (text.find("{", start), text.find("[", start)) if p >= 0]
    return min(positions) if positions else -1


# --- full-width structure ------------------------------------------------------------------

_OPENING_QUOTES = "“„‟〝‘‚‛"  # typographic quotes that open a quotation (may nest inside a string)
_CLOSING_QUOTES = "”〞〟’"
_DOUBLE_LIKE = '"“”„‟〝〞〟＂'
_SINGLE_LIKE = "'‘’‚‛＇"
_LITERAL_START = re.compile(r"(?:true|false|null|none|nan)\b", re.IGNORECASE)


def _outside(ch: str) -> str:
    """A character outside strings as its ASCII counterpart where it has one: full-width forms
    (｛ ［ ： ， ＂ ８ and the ideographic space) by NFKC, 、 as a comma, other spaces as a space."""
    if "\uff01" <= ch <= "\uff5e" or ch == "\u3000":
        return unicodedata.normalize("NFKC", ch)
    if ch == "、":
        return ","
    if ch in "\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\ufeff":
        return " "
    return ch


def _skip_spaces(text: str, k: int) -> int:
    while k < len(text) and (text[k].isspace() or text[k] in "\u3000\ufeff"):
        k += 1
    return k


def _ends_string(text: str, k: int) -> bool:
    """Whether a quote just before position k closes a string: what follows is the end, a
    closing bracket, or a colon or comma that a key or value comes after."""
    k = _skip_spaces(text, k)
    if k >= len(text):
        return True
    mark = _outside(text[k])
    if mark in "}]":
        return True
    if mark not in ",:":
        return False
    k = _skip_spaces(text, k + 1)
    if k >= len(text):
        return True
    nxt = _outside(text[k])
    return (
        nxt in "{[}]\"'-/"
        or nxt.isdigit()
        or text[k] in _DOUBLE_LIKE + _SINGLE_LIKE
        or bool(_LITERAL_START.match(text, k))
    )


def ascii_structure(text: str, *, nested_quotes: bool = True) -> str:
    """The text with the JSON structure outside strings made ASCII and the strings that
    typographic quotes delimit re-quoted with ", while everything inside a string value
    (Chinese dialogue with its ： ， “ ” 「」) is kept as it is.

    A typographic quote opens a string only inside brackets where a key or value starts, and
    closes it only before the end, a closing bracket, or a colon or comma that a value comes
    after; with `nested_quotes`, “ and ” inside a string are paired as a quotation within it."""
    out: list[str] = []
    depth, last, i, n = 0, "", 0, len(text)
    while i < n:
        raw = text[i]
        ch = _outside(raw)
        if depth > 0 and ch == '"':  # a JSON string, ＂ included: kept as it is
            i = _copy_string(text, i, out, closers='"＂')
            last = '"'
            continue
        if depth > 0 and last in '{[,:"' and raw in _DOUBLE_LIKE + _SINGLE_LIKE:
            if ch == "'":  # an ASCII single-quoted string: requote_single_quotes reads it later
                i = _copy_single_quoted(text, i, out)
            else:
                i = _typographic_string(text, i, out, nested_quotes)
            last = '"'
            continue
        if ch in "{[":
            depth += 1
        elif ch in "}]":
            depth = max(depth - 1, 0)
        out.append(ch)
        if not ch.isspace():
            last = ch
        i += 1
    return "".join(out)


def _copy_string(text: str, i: int, out: list[str], closers: str) -> int:
    out.append('"')
    i += 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(text[i : i + 2])
            i += 2
            continue
        i += 1
        if ch in closers:
            out.append('"')
            return i
        out.append(ch)
    return i


def _copy_single_quoted(text: str, i: int, out: list[str]) -> int:
    out.append("'")
    i += 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(text[i : i + 2])
            i += 2
            continue
        out.append(ch)
        i += 1
        if ch == "'" and _ends_string(text, i):
            return i
    return i


def _typographic_string(text: str, i: int, out: list[str], nested_quotes: bool) -> int:
    single = text[i] in _SINGLE_LIKE
    quotes = _SINGLE_LIKE if single else _DOUBLE_LIKE
    out.append('"')
    level = 0
    i += 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(text[i : i + 2])
            i += 2
            continue
        i += 1
        if ch in quotes:
            if nested_quotes and level > 0 and ch in _CLOSING_QUOTES:
                level -= 1
            elif _ends_string(text, i):
                out.append('"')
                return i
            elif nested_quotes and ch in _OPENING_QUOTES:
                level += 1
        out.append('\\"' if ch == '"' else ch)
    return i


# --- JSON encoded again as a string --------------------------------------------------------

# An opening bracket followed by an escape: `{\"scene\"`, `[\n  {` written as `[\\n  {`.
_ESCAPED_OPENING = re.compile(r'[{\[｛［]\s*\\(?:["\\nrt]|u[0-9a-fA-F]{4})')
# A JSON string whose text starts with a bracket (perhaps \u-escaped) or a code fence.
_STRING_OF_JSON = re.compile(r'(?<!\\)"(?=\s*(?:[{\[｛［]|\\u[0-9a-fA-F]{4}|\\n|```))')
_FULL_WIDTH_BRACKETS = str.maketrans("｛［", "{[")
# A key and its colon right after an opening bracket or a comma: text that is JSON, not "[笑] 好".
_JSON_KEY = re.compile(
    r"""[{,｛，]\s*(?:["“'][^"”'\n]{1,80}["”']"""
    r"""|[A-Za-z_\u4e00-\u9fff][\w ()\u4e00-\u9fff]{0,40})\s*[:：]"""
)
_ESCAPE = re.compile(r'\\(?:u[0-9a-fA-F]{4}(?:\\u[0-9a-fA-F]{4})?|["\\/bfnrt])')


def unescape_json_string(text: str) -> str:
    """The escapes of a JSON string body decoded, one level (works on a cut-off body too):
    `{\\"a\\": \\"b\\\\n\\"}` -> `{"a": "b\\n"}`. Unknown escapes are kept."""
    return _ESCAPE.sub(lambda m: json.loads(f'"{m.group()}"'), text)


def encoded_json(text: str) -> str | None:
    """The text of a reply that holds JSON encoded again as a string, one level decoded, or
    None. Each JSON string whose text is JSON (a bracket, then a key and a colon) is replaced
    by that text in place, so that `Image 1: "{...}" Image 2: "{...}"` keeps both, and one cut
    off is decoded up to where it stops; else a text whose brackets open onto escapes
    (`{\\"scene\\": ...}` without the string's quotes) is decoded as a whole."""
    found = _encoded(text)
    return found[0] if found else None


def _encoded(text: str) -> tuple[str, bool] | None:
    """`encoded_json`'s text, and whether the text's first bracket was inside the encoded
    part (then the JSON is the encoded part, not something that merely quotes JSON)."""
    first = _next_opening(text.translate(_FULL_WIDTH_BRACKETS), 0)
    first = len(text) if first < 0 else first
    decoder = json.JSONDecoder()
    quotes = [match.start() for match in _STRING_OF_JSON.finditer(text)]
    if text.lstrip().startswith('"'):  # the whole reply is a JSON string, prose and all
        quotes.insert(0, len(text) - len(text.lstrip()))
    pieces: list[str] = []
    pos, leading, tried = 0, False, 0
    for quote in quotes:
        if quote < pos:  # inside a string decoded already
            continue
        if tried >= _MAX_CANDIDATES:
            break
        tried += 1
        try:
            value, end = decoder.raw_decode(text, quote)
        except ValueError:  # cut off inside the string
            value, end = unescape_json_string(text[quote + 1 :]), len(text)
        if isinstance(value, str) and _JSON_KEY.search(value):
            leading = leading or quote < first
            pieces += [text[pos:quote], value]
            pos = end
    if pieces:
        return "".join(pieces) + text[pos:], leading
    if (escaped := _ESCAPED_OPENING.search(text)) is not None:  # escaped JSON without its quotes
        return unescape_json_string(text), escaped.start() == first
    return None


# --- the ladder ----------------------------------------------------------------------------


def parse_json_text(raw_text: str) -> ParsedText:
    """The JSON value in a model's reply, repaired locally if need be; raises NotRecoverable."""
    return _parse(raw_text, 0)


def _parse(raw_text: str, encodings: int) -> ParsedText:
    text = strip_code_fences(raw_text)
    if not text:
        raise NotRecoverable("empty_output")
    for whole in dict.fromkeys((text, raw_text.strip())):
        try:
            value = json.loads(whole)
        except (ValueError, RecursionError):
            continue
        if isinstance(value, str) and encodings < _MAX_ENCODINGS:  # the reply is a JSON string
            if (inner := _parse_inner(value, encodings)) is not None:
                return inner
        if whole is text:
            return ParsedText(value, as_is=True, open_depth=0)
    # a reply encoded as a whole is read before its fences are stripped (they are inside it)
    source = raw_text.strip() if raw_text.lstrip().startswith('"') else text
    encoded = _encoded(source) if encodings < _MAX_ENCODINGS else None
    if encoded is not None and encoded[1]:  # the JSON itself is a JSON string: read what it holds
        if (inner := _parse_inner(encoded[0], encodings)) is not None:
            return inner
    variants = _variants(text)
    strict: dict[str, Any] = {}  # segment -> what strict parsing with cheap fixes read (once per segment)
    fallback: ParsedText | None = None
    for variant in variants:  # strict parsing and cheap fixes, segment by segment
        found = _read_segments(variant, strict, repair=False)
        if found is not None and _holds_frame(found.value):
            return found
        fallback = fallback or found
    if encoded is not None and not encoded[1]:  # prose around it quotes JSON as a string
        if (inner := _parse_inner(encoded[0], encodings)) is not None:
            return inner
    for variant in variants:  # json_repair on what strict parsing could not read
        found = _read_segments(variant, strict, repair=True)
        if found is not None and _holds_frame(found.value):
            return found
        fallback = fallback or found
    if fallback is not None:
        return fallback
    raise NotRecoverable("no_json")


_NON_ASCII_STRUCTURE = re.compile(
    "[\uff01-\uff5e\u3000、\u00a0\u2000-\u200a\u202f\u205f\ufeff" + _DOUBLE_LIKE[1:] + _SINGLE_LIKE[1:] + "]"
)


def _variants(text: str) -> list[str]:
    """The text, and where it has full-width or typographic punctuation, its ASCII structure
    (typographic quotes inside strings paired, then not)."""
    if not _NON_ASCII_STRUCTURE.search(text):
        return [text]
    return list(dict.fromkeys((text, ascii_structure(text), ascii_structure(text, nested_quotes=False))))


def _parse_inner(text: str, encodings: int) -> ParsedText | None:
    """What a decoded JSON string holds, when that is a frame annotation."""
    try:
        inner = _parse(text, encodings + 1)
    except NotRecoverable:
        return None
    return ParsedText(inner.value, as_is=False, open_depth=inner.open_depth) if _holds_frame(inner.value) else None


def _read_segments(variant: str, strict: dict[str, Any], *, repair: bool) -> ParsedText | None:
    """What the bracketed segments of the text hold, each read strictly with cheap fixes (and
    with `json_repair` when `repair`): several frames ("Image 1: {...} Image 2: {...}") as a
    list, the last one kept as a cut-off frame when the text stops inside it; else the first
    value holding a frame; else the first value read."""
    segments = json_segments(variant)
    values: list[tuple[Any, int]] = []
    for segment, depth in segments:
        if not depth and segment not in strict:
            strict[segment] = _strict_with_fixes(segment)
        value = None if depth else strict[segment]
        if value is None and repair:
            value = _repaired(segment)
        values.append((value, depth))
    frames = [value for value, depth in values if not depth and looks_like_frame(value)]
    if frames and len(segments) > 1 and segments[-1][1]:  # one object per image, the last cut off
        cut, depth = values[-1]
        return ParsedText([*frames, cut if isinstance(cut, dict) else {}], as_is=False, open_depth=depth + 1)
    if len(frames) > 1:  # one object per image
        return ParsedText(frames, as_is=False, open_depth=0)
    read = [(value, depth) for value, depth in values if value is not None]
    for value, depth in read:
        if _holds_frame(value):
            return ParsedText(value, as_is=False, open_depth=depth)
    return ParsedText(read[0][0], as_is=False, open_depth=read[0][1]) if read else None


def _repaired(segment: str) -> Any:
    """`json_repair`'s reading of a segment when it is a non-empty object or array, else None
    (not tried on nesting deeper than an annotation ever goes: it is slow there, then fails)."""
    if _nesting(segment) > _MAX_NESTING:
        return None
    try:
        value = json_repair.loads(segment)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, (dict, list)) and value else None


def _nesting(segment: str) -> int:
    """The deepest bracket nesting in a segment, strings aside."""
    deepest = depth = 0
    for token in _BRACKET_OR_STRING.findall(segment):
        if token in "{[":
            depth += 1
            deepest = max(deepest, depth)
        elif token in "}]":
            depth -= 1
    return deepest


def _holds_frame(value: Any, levels: int = 3) -> bool:
    """A frame annotation, or a list or mapping (a few levels deep) that holds one."""
    if looks_like_frame(value):
        return True
    if levels <= 0:
        return False
    children = value if isinstance(value, list) else value.values() if isinstance(value, dict) else ()
    return any(_holds_frame(child, levels - 1) for child in children)


def is_truncated(raw_text: str) -> bool:
    """The reply stops inside a bracket: the model ran out of tokens (or was cut off)."""
    text = raw_text.strip() if raw_text.lstrip().startswith('"') else strip_code_fences(raw_text)
    for _ in range(_MAX_ENCODINGS):  # inside the JSON string a reply was encoded as
        inner = encoded_json(text)
        if inner is None:
            break
        text = inner.strip() if inner.lstrip().startswith('"') else strip_code_fences(inner)
    text = strip_code_fences(text)
    segments = json_segments(ascii_structure(text))
    return bool(segments) and segments[-1][1] > 0


def _strict_with_fixes(segment: str) -> Any:
    requoted = requote_single_quotes(segment)
    for candidate in dict.fromkeys((segment, _quote_bare_keys(segment), requoted, _quote_bare_keys(requoted))):
        if (value := _strict_or_literal(candidate)) is not None:
            return value
    return None


def _quote_bare_keys(text: str) -> str:
    return _BARE_KEY.sub(r'\1"\2"\3:', text)


_CLOSES_STRING = re.compile(r"\s*(?:[,:}\]]|$)")


def requote_single_quotes(text: str) -> str:
    """{'line': 'it's late'} -> {"line": "it's late"}: a ' opens a string only where a value or
    key starts (after { [ , :) and closes it only before , : } ] or the end, so apostrophes
    inside the text survive."""
    out: list[str] = []
    quote: str | None = None
    last = ""  # the last character outside strings that was not a space
    i = 0
    while i < len(text):
        ch = text[i]
        if quote == '"':
            out.append(ch)
            if ch == "\\" and i + 1 < len(text):
                out.append(text[i + 1])
                i += 1
            elif ch == '"':
                quote, last = None, '"'
        elif quote == "'":
            if ch == "\\" and text[i + 1 : i + 2] == "'":
                out.append("'")
                i += 1
            elif ch == "'" and _CLOSES_STRING.match(text, i + 1):
                out.append('"')
                quote, last = None, '"'
            else:
                out.append('\\"' if ch == '"' else ch)
        elif ch == "'" and last in ("", "{", "[", ",", ":"):
            out.append('"')
            quote = "'"
        else:
            if ch == '"':
                quote = '"'
            out.append(ch)
            if not ch.isspace():
                last = ch
        i += 1
    return "".join(out)


def _strict_or_literal(segment: str) -> Any:
    try:
        return json.loads(segment, strict=False)  # strict=False: raw newlines and tabs in strings
    except (ValueError, RecursionError):
        pass
    if _adjacent_strings(segment):  # ["a" "b"] is a missing comma, not Python's "ab"
        return None
    try:  # a Python repr: single quotes, True/None
        value = ast.literal_eval(segment)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    return value if isinstance(value, (dict, list)) else None


def _adjacent_strings(segment: str) -> bool:
    """Two string literals in a row (Python would join them into one)."""
    previous = None
    try:
        for token in tokenize.generate_tokens(io.StringIO(segment).readline):
            if token.type in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT):
                continue
            if token.type == tokenize.STRING and previous == tokenize.STRING:
                return True
            previous = token.type
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return False
    return False

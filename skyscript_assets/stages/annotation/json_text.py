"""Reading the JSON value out of a model's reply, repairing it locally where it can.

`parse_json_text(text)` returns a `ParsedText` (the value, whether it parsed as is, and how
many brackets were still open where the text ended) or raises `NotRecoverable(reason)`.
Cheapest first: strip code fences, `json.loads`; then on each bracketed segment of the text
(the prose around it ignored) strict parsing, Python literals, single quotes and bare keys
re-quoted; then `json_repair` on the longest segment; all of it again with full-width
punctuation turned into ASCII.
"""

from __future__ import annotations

import ast
import json
import re
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
_FULL_WIDTH = str.maketrans({"｛": "{", "｝": "}", "［": "[", "］": "]", "：": ":", "，": ",",
                             "“": '"', "”": '"', "＂": '"', "‘": "'", "’": "'"})
_MAX_CANDIDATES = 16  # bracketed segments looked at: enough for one object per image of a batch
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


def parse_json_text(raw_text: str) -> ParsedText:
    """The JSON value in a model's reply, repaired locally if need be; raises NotRecoverable."""
    text = strip_code_fences(raw_text)
    if not text:
        raise NotRecoverable("empty_output")
    try:
        return ParsedText(json.loads(text), as_is=True, open_depth=0)
    except ValueError:
        pass
    for variant in (text, text.translate(_FULL_WIDTH)):
        segments = json_segments(variant)
        complete = [value for segment, depth in segments if not depth
                    if (value := _strict_with_fixes(segment)) is not None]
        frames = [value for value in complete if looks_like_frame(value)]
        if len(frames) > 1:  # "Image 1: {...} Image 2: {...}": one object per image
            return ParsedText(frames, as_is=False, open_depth=0)
        if complete:
            return ParsedText(complete[0], as_is=False, open_depth=0)
        if segments:
            segment, depth = max(segments, key=lambda s: len(s[0]))
            value = json_repair.loads(segment)
            if isinstance(value, (dict, list)) and value:
                return ParsedText(value, as_is=False, open_depth=depth)
    raise NotRecoverable("no_json")


def is_truncated(raw_text: str) -> bool:
    """The reply stops inside a bracket: the model ran out of tokens (or was cut off)."""
    segments = json_segments(strip_code_fences(raw_text).translate(_FULL_WIDTH))
    return bool(segments) and segments[-1][1] > 0


def _strict_with_fixes(segment: str) -> Any:
    requoted = requote_single_quotes(segment)
    for candidate in (segment, _quote_bare_keys(segment), requoted, _quote_bare_keys(requoted)):
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
            if ch == "\\" and text[i + 1:i + 2] == "'":
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
        return json.loads(segment)
    except ValueError:
        pass
    try:  # a Python repr: single quotes, True/None
        value = ast.literal_eval(segment)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    return value if isinstance(value, (dict, list)) else None

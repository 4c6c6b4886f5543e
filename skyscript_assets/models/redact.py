"""Redaction of secrets from text a model server sent back, before it becomes a message.

An error body, an exception's text or a reply snippet can hold what the request carried: a
server that echoes the request headers in its 401 body hands the API key back. Everything a
model client turns into an exception message, a loss detail or a log line goes through
`redact` first:

    redact('401: {"authorization": "Bearer sk-abc123..."}', secrets=(api_key,))
    -> '401: {"authorization": "[redacted]"}'

It removes the configured secrets themselves, credential headers (Authorization,
Proxy-Authorization, X-Api-Key, Api-Key, Cookie) and `Bearer`/`Basic` credentials,
credentials in URLs (user:password@, ?api_key=...), and key-like strings (sk-..., hf_...,
JWTs, long hex or base64 tokens), then collapses the text to one line of at most `limit`
characters.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "[redacted]"
LIMIT = 300

# A credential header or field name, then its separator, then the value up to a quote, a
# comma, a semicolon, a closing brace or the end of the line.
_HEADER = re.compile(
    r"(?i)(\b(?:proxy-)?authorization|\bx-api-key|\bapi[-_]?key|\bcookie|\bset-cookie)"
    r"(\W{0,3}[:=]\s*[\"']?)([^\"'\r\n,;}]*)"
)
_SCHEME = re.compile(r"\b((?i:bearer)|Basic(?=\s+[A-Za-z0-9+/=]{8,}))(\s+)([^\s\"',;}]+)")
_URL_USERINFO = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://)[^/\s@\"']+@")
_QUERY_SECRET = re.compile(r"(?i)([?&](?:api[-_]?key|key|token|access[-_]?token|auth|sig|signature)=)[^&\s\"']+")
# Vendor key prefixes: OpenAI sk-/sk-proj-, Hugging Face hf_, GitHub ghp_/gho_/ghs_/github_pat_, Slack xox?-, AWS AKIA.
_PREFIXED_KEY = re.compile(
    r"\b(?:sk|pk|rk|hf|ghp|gho|ghs|ghu|github_pat|xox[abprs])[-_][A-Za-z0-9_\-*.]{6,}|\bAKIA[0-9A-Z]{12,}"
)
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]*)?")
_TOKEN = re.compile(r"[A-Za-z0-9+/_\-]{32,}={0,2}")
_HEX = re.compile(r"[0-9a-fA-F]{32,}")


def redact(text: object, secrets: Iterable[str | None] = (), *, limit: int = LIMIT) -> str:
    """`text` without secrets or key-like strings, on one line of at most `limit` characters."""
    text = str(text)
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
        # a body read only up to some length can end in the first part of the secret
        cut = next((k for k in range(len(secret) - 1, 3, -1) if text.endswith(secret[:k])), 0)
        text = text[: len(text) - cut] + REDACTED if cut else text
    text = _URL_USERINFO.sub(lambda m: m[1] + REDACTED + "@", text)
    text = _QUERY_SECRET.sub(lambda m: m[1] + REDACTED, text)
    text = _HEADER.sub(_redact_header_value, text)
    text = _SCHEME.sub(lambda m: m[0] if m[3] == REDACTED else m[1] + m[2] + REDACTED, text)
    text = _PREFIXED_KEY.sub(REDACTED, text)
    text = _JWT.sub(REDACTED, text)
    text = _TOKEN.sub(lambda m: REDACTED if _looks_like_token(m[0]) else m[0], text)
    text = _HEX.sub(REDACTED, text)
    return _one_line(text, limit)


def _redact_header_value(match: re.Match) -> str:
    name, separator, value = match.groups()
    if not value.strip() or value.startswith(REDACTED):  # nothing there, or already gone with the secret
        return match[0]
    return name + separator + REDACTED


def _looks_like_token(word: str) -> bool:
    """A long run of base64 characters that mixes cases and digits in a long unbroken stretch
    (a key, a JWT part), not a path or a hyphenated model name like Qwen2-VL-72B-Instruct-AWQ."""
    if not (any(c.isdigit() for c in word) and any(c.islower() for c in word) and any(c.isupper() for c in word)):
        return False
    return max(len(part) for part in re.split(r"[-_/]", word)) >= 20


def _one_line(text: str, limit: int) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"

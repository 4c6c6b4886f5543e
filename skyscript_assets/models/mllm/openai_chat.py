"""The `openai` backend: any OpenAI-compatible chat-completions server.

lmdeploy's `api_server`, vLLM and hosted APIs all speak this protocol. Images travel as
base64 data URLs; many requests are in flight at once (bounded by `max_concurrency`);
429, 5xx, timeouts and dropped connections are retried with exponential backoff (or the
server's Retry-After). When `json_schema` is not False the reply format is constrained with
a JSON-schema `response_format`; a server that refuses it (400/422) is asked again without
it, and not asked again with it.

The API key is read from the environment variable named by `api_key_env`, once, and is
sent only in the Authorization header: never logged, never in a model id or an error.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import random
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from skyscript_assets.models.mllm import MllmReply, MllmRequest, image_mime_type, one_line

_RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class ChatError(RuntimeError):
    """A chat request that failed for good (after its retries); the message is one line."""


class OpenAIChatClient:
    """A small, thread-safe chat-completions client with retries; one per server."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str = "OPENAI_API_KEY",
        timeout_s: float = 120.0,
        max_retries: int = 4,
        backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
    ):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._api_key = os.environ.get(api_key_env, "") if api_key_env else ""
        self._schema_refused = threading.Event()  # set once the server rejects response_format
        self._n_refused = threading.Event()  # set once the server rejects n > 1

    def complete(self, messages: list[dict], *, max_tokens: int = 2048, temperature: float = 0.0,
                 json_schema: dict | None = None) -> str:
        """The text of the first choice; raises ChatError when the request fails for good."""
        body = {"model": self.model, "messages": messages, "max_tokens": max_tokens, "temperature": temperature}
        if json_schema is not None and not self._schema_refused.is_set():
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": "frame_annotations", "schema": json_schema}}
        try:
            return self._post_with_retries(body)
        except _Rejected as exc:
            if "response_format" not in body:
                raise ChatError(str(exc)) from None
            body.pop("response_format")
            try:
                text = self._post_with_retries(body)
            except _Rejected as again:  # refused for another reason (too long, bad image): keep the schema
                raise ChatError(str(again)) from None
            self._schema_refused.set()  # e.g. a server without guided decoding: stop sending it
            return text

    def complete_choices(self, messages: list[dict], *, n: int, max_tokens: int = 2048, temperature: float = 1.0,
                         seed: int | None = None) -> list[str]:
        """The texts of every choice of one request asking for `n` samples (a server may return
        fewer); raises ChatError when the request fails for good. A server that refuses `n` > 1
        (400/422) is asked again for one sample, and not asked for more again."""
        body = {"model": self.model, "messages": messages, "max_tokens": max_tokens, "temperature": temperature}
        if seed is not None:
            body["seed"] = seed
        if n > 1 and not self._n_refused.is_set():
            body["n"] = n
        try:
            return self._post_with_retries(body, _all_choice_texts)
        except _Rejected as exc:
            if "n" not in body:
                raise ChatError(str(exc)) from None
            body.pop("n")
            try:
                texts = self._post_with_retries(body, _all_choice_texts)
            except _Rejected as again:
                raise ChatError(str(again)) from None
            self._n_refused.set()
            return texts

    def _post_with_retries(self, body: dict, parse=None):
        payload = json.dumps(body).encode()
        for attempt in range(self.max_retries + 1):
            try:
                return self._post(payload, parse or _first_choice_text)
            except _Transient as exc:
                if attempt == self.max_retries:
                    raise ChatError(f"gave up after {attempt + 1} attempts: {exc}") from None
                time.sleep(self._delay(attempt, exc.retry_after))
        raise AssertionError("unreachable")

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_backoff_s)
        # full jitter keeps many workers from retrying in lock-step
        return random.uniform(0.5, 1.0) * min(self.backoff_s * 2**attempt, self.max_backoff_s)

    def _post(self, payload: bytes, parse):
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        request = urllib.request.Request(self.url, data=payload, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            detail = one_line(exc.read()[:300].decode("utf-8", "replace"))
            if exc.code in _RETRY_STATUS:
                raise _Transient(f"HTTP {exc.code} {detail}", _retry_after(exc.headers.get("Retry-After"))) from None
            raise _Rejected(f"HTTP {exc.code} from {self.url}: {detail}") from None
        except (TimeoutError, socket.timeout) as exc:
            raise _Transient(f"no answer within {self.timeout_s:g} s") from exc
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:  # refused, reset, cut short
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, (TimeoutError, socket.timeout)):
                raise _Transient(f"no answer within {self.timeout_s:g} s") from None
            raise _Transient(f"connection failed: {one_line(reason)}") from None
        return parse(raw)


class _Transient(Exception):
    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class _Rejected(Exception):
    """The server answered but refused the request (4xx other than 408/409/425/429)."""


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:  # an HTTP date: fall back to our own backoff
        return None


def _first_choice_text(raw: bytes) -> str:
    try:
        choice = json.loads(raw)["choices"][0]
    except (ValueError, KeyError, IndexError, TypeError):
        snippet = one_line(raw[:200].decode("utf-8", "replace"))
        raise ChatError(f"malformed chat-completions reply: {snippet!r}") from None
    return _choice_text(choice, raw)


def _all_choice_texts(raw: bytes) -> list[str]:
    try:
        choices = json.loads(raw)["choices"]
        if not isinstance(choices, list):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        snippet = one_line(raw[:200].decode("utf-8", "replace"))
        raise ChatError(f"malformed chat-completions reply: {snippet!r}") from None
    # choices carry their index; keep the server's sample order whatever order they come in
    ordered = sorted(choices, key=lambda c: c.get("index", 0) if isinstance(c, dict) else 0)
    texts = []
    for choice in ordered:
        try:
            texts.append(_choice_text(choice, raw))
        except ChatError:  # one sample without text is an empty sample, not a failed request
            texts.append("")
    return texts


def _choice_text(choice, raw: bytes) -> str:
    try:
        content = choice["message"]["content"]
    except (KeyError, TypeError):
        snippet = one_line(raw[:200].decode("utf-8", "replace"))
        raise ChatError(f"malformed chat-completions reply: {snippet!r}") from None
    if isinstance(content, list):  # some servers return content parts
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    if not isinstance(content, str):
        raise ChatError("the reply has no message content")
    return content


def image_part(data: bytes) -> dict:
    mime = image_mime_type(data)
    if mime is None:
        raise ValueError("not a JPEG, PNG or WebP image")
    return {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{base64.b64encode(data).decode()}"}}


class OpenAIBackend:
    """Annotation requests to an OpenAI-compatible server, `max_concurrency` in flight."""

    needs_gpu = False  # the server holds the GPU, not this process

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        max_concurrency: int = 16,
        max_tokens: int = 2048,
        temperature: float = 0.0,
        json_schema: bool = True,
        **client_config,  # api_key_env, timeout_s, max_retries, backoff_s, max_backoff_s: see OpenAIChatClient
    ):
        self.client = OpenAIChatClient(base_url, model, **client_config)
        self.model_id = f"openai:{model}"
        self.max_tokens = max_tokens
        self.temperature = temperature
        self._schema = None
        if json_schema:
            from skyscript_assets.prompts import output_json_schema

            self._schema = output_json_schema()
        self._pool = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="mllm-openai")

    def generate(self, requests: Sequence[MllmRequest]) -> list[MllmReply]:
        return list(self._pool.map(self._one, requests))

    def _one(self, request: MllmRequest) -> MllmReply:
        started = time.perf_counter()
        try:
            content = [image_part(image) for image in request.images] + [{"type": "text", "text": request.prompt}]
            text = self.client.complete([{"role": "user", "content": content}], max_tokens=self.max_tokens,
                                        temperature=self.temperature, json_schema=self._schema)
            return MllmReply(text, seconds=time.perf_counter() - started)
        except (ChatError, ValueError) as exc:
            return MllmReply(None, error=one_line(exc), seconds=time.perf_counter() - started)

    def close(self) -> None:
        self._pool.shutdown(wait=True)

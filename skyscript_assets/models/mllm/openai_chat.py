"""The `openai` backend: any OpenAI-compatible chat-completions server.

lmdeploy's `api_server`, vLLM and hosted APIs all speak this protocol. Images travel as
base64 data URLs; many requests are in flight at once (bounded by `max_concurrency`);
429, 5xx, timeouts and dropped connections are retried with exponential backoff (or the
server's Retry-After). When `json_schema` is not False the reply format is constrained with
a JSON-schema `response_format`; a server that refuses it (400/422) is asked again without
it, and not asked again with it.

Every request has an overall deadline (`deadline_s`, 120 s by default) that covers its
retries and holds however slowly the bytes come: when it passes, the request's sockets are
shut down and the request fails with "deadline: no complete reply within 120 s". `timeout_s`
bounds each socket operation on its own (and never reaches past the deadline). Only a DNS
lookup is outside the deadline's reach.

The API key is read from the environment variable named by `api_key_env`, once, and is
sent only in the Authorization header: never logged, never in a model id or an error. What
comes back from a server (error bodies, reply snippets, exception texts) passes through
`redact` before it becomes a message or a log line, so a server that echoes the key does not
plant it in losses, logs or event metadata.
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import os
import random
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from skyscript_assets.models.mllm import MllmReply, MllmRequest, image_mime_type
from skyscript_assets.models.redact import redact

_RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
DEFAULT_DEADLINE_S = 120.0
log = logging.getLogger(__name__)


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
        deadline_s: float = DEFAULT_DEADLINE_S,
        max_retries: int = 4,
        backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
    ):
        if not deadline_s > 0:
            raise ValueError(f"deadline_s must be positive, not {deadline_s!r}")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.timeout_s = timeout_s
        self.deadline_s = deadline_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._api_key = os.environ.get(api_key_env, "") if api_key_env else ""
        self._schema_refused = threading.Event()  # set once the server rejects response_format
        self._n_refused = threading.Event()  # set once the server rejects n > 1

    def redact(self, text: object) -> str:
        """`text` as one line without the API key, credential headers or key-like strings."""
        return redact(text, (self._api_key,))

    def complete(
        self,
        messages: list[dict],
        *,
        max_tokens: int = 2048,
        temperature: float = 0.0,
        json_schema: dict | None = None,
    ) -> str:
        """The text of the first choice; raises ChatError when the request fails for good."""
        body = {"model": self.model, "messages": messages, "max_tokens": max_tokens, "temperature": temperature}
        if json_schema is not None and not self._schema_refused.is_set():
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "frame_annotations", "schema": json_schema},
            }
        with _Deadline(self.deadline_s) as deadline:
            try:
                return self._post_with_retries(body, deadline)
            except _Rejected as exc:
                if "response_format" not in body:
                    raise ChatError(str(exc)) from None
            body.pop("response_format")
            try:
                text = self._post_with_retries(body, deadline)
            except _Rejected as again:  # refused for another reason (too long, bad image): keep the schema
                raise ChatError(str(again)) from None
            self._schema_refused.set()  # e.g. a server without guided decoding: stop sending it
            return text

    def complete_choices(
        self,
        messages: list[dict],
        *,
        n: int,
        max_tokens: int = 2048,
        temperature: float = 1.0,
        seed: int | None = None,
    ) -> list[str]:
        """The texts of every choice of one request asking for `n` samples (a server may return
        fewer); raises ChatError when the request fails for good. A server that refuses `n` > 1
        (400/422) is asked again for one sample, and not asked for more again."""
        body = {"model": self.model, "messages": messages, "max_tokens": max_tokens, "temperature": temperature}
        if seed is not None:
            body["seed"] = seed
        if n > 1 and not self._n_refused.is_set():
            body["n"] = n
        with _Deadline(self.deadline_s) as deadline:
            try:
                return self._post_with_retries(body, deadline, _all_choice_texts)
            except _Rejected as exc:
                if "n" not in body:
                    raise ChatError(str(exc)) from None
            body.pop("n")
            try:
                texts = self._post_with_retries(body, deadline, _all_choice_texts)
            except _Rejected as again:
                raise ChatError(str(again)) from None
            self._n_refused.set()
            return texts

    def _post_with_retries(self, body: dict, deadline: _Deadline, parse=None):
        payload = json.dumps(body).encode()
        for attempt in range(self.max_retries + 1):
            try:
                return self._post(payload, parse or _first_choice_text, deadline)
            except _Transient as exc:
                if attempt == self.max_retries:
                    raise ChatError(self.redact(f"gave up after {attempt + 1} attempts: {exc}")) from None
                delay = self._delay(attempt, exc.retry_after)
                if delay >= deadline.remaining():  # no time for another attempt: fail now, not at the deadline
                    raise ChatError(self.redact(f"{deadline.reason}; last attempt: {exc}")) from None
                log.warning(
                    "chat request to %s failed (%s); retry %d of %d in %.1f s",
                    self.redact(self.url),
                    exc,
                    attempt + 1,
                    self.max_retries,
                    delay,
                )
                time.sleep(delay)
        raise AssertionError("unreachable")

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_backoff_s)
        # full jitter keeps many workers from retrying in lock-step
        return random.uniform(0.5, 1.0) * min(self.backoff_s * 2**attempt, self.max_backoff_s)

    def _post(self, payload: bytes, parse, deadline: _Deadline):
        """One attempt. Raises ChatError once the request's deadline has passed (whatever the
        attempt was doing then), _Transient for what is worth another attempt, _Rejected for a
        refusal; every message is redacted."""
        remaining = deadline.remaining()
        if remaining <= 0:
            raise ChatError(deadline.reason)
        timeout = min(self.timeout_s, remaining)  # a connect or a silent read never outlasts the deadline
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        request = urllib.request.Request(self.url, data=payload, headers=headers, method="POST")
        opener = urllib.request.build_opener(_GuardedHTTPHandler(deadline), _GuardedHTTPSHandler(deadline))
        try:
            try:
                with opener.open(request, timeout=timeout) as response:
                    raw = response.read()
            except urllib.error.HTTPError as exc:
                with exc:
                    body = exc.read(2000)
                deadline.check()
                detail = self.redact(body.decode("utf-8", "replace"))
                if exc.code in _RETRY_STATUS:
                    raise _Transient(
                        f"HTTP {exc.code} {detail}", _retry_after(exc.headers.get("Retry-After"))
                    ) from None
                raise _Rejected(self.redact(f"HTTP {exc.code} from {self.url}: {detail}")) from None
            deadline.check()  # a body cut short by the deadline is no reply, whatever it parses as
        except (_Transient, _Rejected):
            raise
        except Exception as exc:
            if deadline.expired:
                raise ChatError(deadline.reason) from None
            if isinstance(exc, (TimeoutError, socket.timeout)):
                raise _Transient(f"no answer within {timeout:g} s") from None
            if isinstance(
                exc, (urllib.error.URLError, http.client.HTTPException, OSError)
            ):  # refused, reset, cut short
                reason = getattr(exc, "reason", exc)
                if isinstance(reason, (TimeoutError, socket.timeout)):
                    raise _Transient(f"no answer within {timeout:g} s") from None
                raise _Transient(f"connection failed: {self.redact(reason)}") from None
            raise ChatError(self.redact(f"request failed: {type(exc).__name__}: {exc}")) from None
        finally:
            deadline.forget_sockets()
        try:
            return parse(raw)
        except ChatError as exc:
            raise ChatError(self.redact(exc)) from None


class _Deadline:
    """The overall deadline of one request. A timer shuts down the sockets of the attempt in
    flight when it passes, so a blocked read returns at once (end of stream or an error) even
    when the server trickles a byte every few seconds and no single read ever times out."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.reason = f"deadline: no complete reply within {seconds:g} s"
        self._at = time.monotonic() + seconds
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._expired = False
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.cancel()

    @property
    def expired(self) -> bool:
        return self._expired

    def remaining(self) -> float:
        return self._at - time.monotonic()

    def check(self) -> None:
        """Raise (an OSError, which urllib and the attempt handle) once the deadline has passed."""
        if self._expired:
            raise OSError(self.reason)

    def watch(self, sock: socket.socket) -> socket.socket:
        """Shut `sock` down when the deadline passes (at once if it has)."""
        with self._lock:
            if self._expired:
                _shut_down(sock)
            else:
                self._sockets.append(sock)
        return sock

    def forget_sockets(self) -> None:
        with self._lock:
            self._sockets.clear()

    def _expire(self) -> None:
        with self._lock:
            self._expired = True
            for sock in self._sockets:
                _shut_down(sock)


def _shut_down(sock: socket.socket) -> None:
    try:
        # the plain socket's shutdown, also for TLS: it only wakes the reader (no TLS close_notify
        # from this thread); closing stays with the thread that owns the connection
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:  # already closed, or handed over to a TLS wrapper
        pass


class _GuardedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection whose sockets the request's deadline can shut down."""

    def __init__(self, *args, deadline: _Deadline, **kwargs):
        super().__init__(*args, **kwargs)
        self._deadline = deadline
        self._create_connection = lambda *a, **k: deadline.watch(socket.create_connection(*a, **k))

    def connect(self):
        super().connect()  # a proxy's CONNECT reply is read on a watched socket too
        self._deadline.check()


class _GuardedHTTPSConnection(http.client.HTTPSConnection):
    """As _GuardedHTTPConnection, and the TLS socket is watched before its handshake starts."""

    def __init__(self, *args, deadline: _Deadline, **kwargs):
        super().__init__(*args, **kwargs)
        self._deadline = deadline
        self._create_connection = lambda *a, **k: deadline.watch(socket.create_connection(*a, **k))

    def connect(self):
        http.client.HTTPConnection.connect(self)
        self._deadline.check()
        server_hostname = self._tunnel_host or self.host
        self.sock = self._deadline.watch(
            self._context.wrap_socket(self.sock, server_hostname=server_hostname, do_handshake_on_connect=False)
        )
        self._deadline.check()
        self.sock.do_handshake()


class _GuardedHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, deadline: _Deadline):
        super().__init__()
        self._deadline = deadline

    def http_open(self, req):
        return self.do_open(_GuardedHTTPConnection, req, deadline=self._deadline)


class _GuardedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, deadline: _Deadline):
        super().__init__()
        self._deadline = deadline

    def https_open(self, req):
        return self.do_open(_GuardedHTTPSConnection, req, context=self._context, deadline=self._deadline)


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
        snippet = redact(raw[:1000].decode("utf-8", "replace"), limit=200)
        raise ChatError(f"malformed chat-completions reply: {snippet!r}") from None
    return _choice_text(choice, raw)


def _all_choice_texts(raw: bytes) -> list[str]:
    try:
        choices = json.loads(raw)["choices"]
        if not isinstance(choices, list):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        snippet = redact(raw[:1000].decode("utf-8", "replace"), limit=200)
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
        snippet = redact(raw[:1000].decode("utf-8", "replace"), limit=200)
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
        # api_key_env, timeout_s, deadline_s, max_retries, backoff_s, max_backoff_s: see OpenAIChatClient
        **client_config,
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
            text = self.client.complete(
                [{"role": "user", "content": content}],
                max_tokens=self.max_tokens,
                temperature=self.temperature,
                json_schema=self._schema,
            )
            return MllmReply(text, seconds=time.perf_counter() - started)
        except (ChatError, ValueError) as exc:
            return MllmReply(None, error=self.client.redact(exc), seconds=time.perf_counter() - started)

    def close(self) -> None:
        self._pool.shutdown(wait=True)

"""A local chat-completions server for tests and benchmarks (127.0.0.1, random port).

The scenario is named in the request's text (`scenario=NAME`) so one server can serve
several behaviours at once: good, 429_once, 500_twice, always_500, slow_once, always_slow,
malformed, no_schema (400 while a response_format is sent), bad_request (always 400),
empty_choices; hostile servers: trickle (a 200 whose body comes one byte every `trickle_s`
and never completes), trickle_head (the status line itself one byte at a time), echo_auth
(401 whose body echoes the request's headers, Authorization included), echo_auth_503 (the
same as a retryable 503); for text generation with `n` samples: restore (n Fountain restorations of the
draft in the prompt, every fourth a copy of the one before), restore_max2 (at most two choices
per request, like a server that ignores n), restore_no_n (400 while n > 1 is sent). A request
asking for a "Relationship label:" is answered "wary allies." in any scenario.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GOOD_FRAME = {
    "scene": {"number": 1, "name": "Office"},
    "scene_description": "An office at night.",
    "people": [{"type": "person", "vad": {"valence": "6", "arousal": 4, "dominance": 5}, "shot_type": "Medium Shot"}],
    "objects": [],
}


class FakeChatServer:
    def __init__(
        self,
        latency_s: float = 0.0,
        slow_s: float = 1.0,
        trickle_s: float = 0.2,
        trickle_for_s: float = 30.0,
        tls=None,
    ):
        """`tls`: an ssl.SSLContext (server side) to serve https instead of http."""
        self.latency_s = latency_s
        self.slow_s = slow_s
        self.trickle_s = trickle_s  # seconds between two bytes of a trickling reply
        self.trickle_for_s = trickle_for_s  # a trickling reply stops after this long (or when the client leaves)
        self.attempts: Counter = Counter()
        self.bodies: list[dict] = []
        self.headers: list[dict] = []
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        scheme = "https" if tls is not None else "http"
        self.base_url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> FakeChatServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output quiet
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                text = " ".join(
                    p.get("text", "")
                    for m in body["messages"]
                    for p in (m["content"] if isinstance(m["content"], list) else [{"text": m["content"]}])
                )
                scenario = (re.search(r"scenario=(\w+)", text) or [None, "good"])[1]
                with fake._lock:
                    fake.attempts[scenario] += 1
                    attempt = fake.attempts[scenario]
                    fake.bodies.append(body)
                    fake.headers.append(dict(self.headers))
                if fake.latency_s:
                    time.sleep(fake.latency_s)
                images = sum(
                    1
                    for m in body["messages"]
                    if isinstance(m["content"], list)
                    for p in m["content"]
                    if p.get("type") == "image_url"
                )
                if scenario in ("echo_auth", "echo_auth_503"):
                    echoed = {
                        "error": {
                            "message": f"invalid credentials: Authorization: {self.headers.get('Authorization')}"
                        },
                        "request_headers": dict(self.headers),
                    }
                    return self._send(401 if scenario == "echo_auth" else 503, echoed, {"Retry-After": "0"})
                if scenario in ("trickle", "trickle_head"):
                    return self._trickle(head_too=scenario == "trickle_head")
                if scenario == "429_once" and attempt == 1:
                    return self._send(429, {"error": "rate limited"}, {"Retry-After": "0"})
                if scenario == "500_twice" and attempt <= 2 or scenario == "always_500":
                    return self._send(500, {"error": "internal"})
                if scenario == "slow_once" and attempt == 1 or scenario == "always_slow":
                    time.sleep(fake.slow_s)
                if scenario == "malformed":
                    return self._send(200, None, raw=b"<html>bad gateway</html>")
                if scenario == "no_schema" and "response_format" in body:
                    return self._send(400, {"error": {"message": "response_format is not supported"}})
                if scenario == "bad_request":
                    return self._send(400, {"error": {"message": "prompt is too long"}})
                if scenario == "empty_choices":
                    return self._send(200, {"choices": []})
                if "Relationship label:" in text:
                    return self._send(200, _chat_reply(body, ["wary allies."]))
                if scenario == "restore_no_n" and body.get("n", 1) > 1:
                    return self._send(400, {"error": {"message": "n > 1 is not supported"}})
                if scenario.startswith("restore"):
                    n = body.get("n", 1) if scenario != "restore_max2" else min(2, body.get("n", 1))
                    return self._send(200, _chat_reply(body, restorations(text, n, body.get("seed", 0))))
                content = json.dumps({"frames": [GOOD_FRAME] * max(images, 1)})
                return self._send(
                    200,
                    {
                        "id": "x",
                        "object": "chat.completion",
                        "model": body["model"],
                        "choices": [
                            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}
                        ],
                    },
                )

            def _trickle(self, head_too: bool):
                """One byte every trickle_s: no socket read ever waits long, the reply never ends."""
                head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
                data = head + b'{"choices": [' + b" " * 100000 if head_too else b'{"choices": [' + b" " * 100000
                if not head_too:
                    self.wfile.write(head)
                    self.wfile.flush()
                stop = time.monotonic() + fake.trickle_for_s
                try:
                    for byte in data:
                        if time.monotonic() > stop:
                            break
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(fake.trickle_s)
                except OSError:  # the client gave up on us (its deadline)
                    pass
                self.close_connection = True

            def _send(self, status, payload, headers=None, raw=None):
                data = raw if raw is not None else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for key, value in (headers or {}).items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                    pass

        return Handler


WORDS = (
    "rain door cup window light glance step chair table coat silence breath hand street clock letter phone "
    "smile shadow voice kettle floor wall stair lamp key photo note bag train ticket bench wind river"
).split()


def restorations(prompt: str, n: int, seed: int) -> list[str]:
    """`n` restorations of the draft quoted in `prompt`: the draft plus an action paragraph of
    its own per sample (seeded, so equal requests get equal answers); every fourth sample is a
    copy of the one before, which the near-duplicate filter must remove."""
    draft = prompt.split("(Fountain draft):\n", 1)[-1].split("\n\nStyle of this version:", 1)[0].strip()
    texts = []
    for index in range(n):
        if index % 4 == 3:
            texts.append(texts[-1])
            continue
        rng = random.Random(seed * 1000 + index)
        beat = " ".join(rng.choice(WORDS) for _ in range(40))
        texts.append(f"{draft}\n\nA beat: {beat}.\n")
    return texts


def _chat_reply(body: dict, texts: list[str]) -> dict:
    return {
        "id": "x",
        "object": "chat.completion",
        "model": body["model"],
        "choices": [
            {"index": i, "finish_reason": "stop", "message": {"role": "assistant", "content": t}}
            for i, t in enumerate(texts)
        ],
    }


if __name__ == "__main__":  # a server in its own process, for benchmarks: prints its base URL
    import argparse
    import sys

    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--seconds", type=float, default=120, help="stop by itself after this long")
    options = parser.parse_args()
    with FakeChatServer(latency_s=options.latency) as fake:
        print(fake.base_url, flush=True)
        sys.stdin.read() if options.seconds <= 0 else time.sleep(options.seconds)

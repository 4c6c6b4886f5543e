"""The `openai` backend against a real HTTP server on 127.0.0.1 speaking chat completions."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from fake_chat_server import FakeChatServer
from PIL import Image

from skyscript_assets.models.llm import LlmJsonRepairer
from skyscript_assets.models.mllm import MllmRequest, load_backend
from skyscript_assets.stages.annotation.clean_json import CleanOutcome, clean_raw_output


def jpeg(color=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((24, 32, 3), color, np.uint8)).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture
def server():
    with FakeChatServer(slow_s=2.0) as fake:
        yield fake


def backend_for(server, monkeypatch, **config):
    monkeypatch.setenv("SKYSCRIPT_TEST_API_KEY", "sk-test-secret")
    config = {
        "base_url": server.base_url,
        "model": "internvl2-test",
        "api_key_env": "SKYSCRIPT_TEST_API_KEY",
        "max_concurrency": 4,
        "backoff_s": 0.01,
        "max_retries": 3,
        "timeout_s": 0.5,
        **config,
    }
    return load_backend("openai", **config)


def request(scenario: str, images: int = 2) -> MllmRequest:
    return MllmRequest(images=tuple(jpeg() for _ in range(images)), prompt=f"annotate. scenario={scenario}")


def test_good_reply_sends_images_as_data_urls_with_schema_and_key(server, monkeypatch):
    backend = backend_for(server, monkeypatch)
    [reply] = backend.generate([request("good", images=2)])
    backend.close()
    assert reply.error is None
    cleaned = clean_raw_output(reply.text, ["kf1", "kf2"])
    assert cleaned.outcome is CleanOutcome.PARSED_AS_IS and len(cleaned.frames) == 2
    body = server.bodies[0]
    parts = body["messages"][0]["content"]
    urls = [p["image_url"]["url"] for p in parts if p["type"] == "image_url"]
    assert len(urls) == 2 and all(u.startswith("data:image/jpeg;base64,") for u in urls)
    assert base64.b64decode(urls[0].split(",", 1)[1])[:3] == b"\xff\xd8\xff"
    assert body["response_format"]["type"] == "json_schema"
    assert "frames" in body["response_format"]["json_schema"]["schema"]["properties"]
    assert server.headers[0]["Authorization"] == "Bearer sk-test-secret"
    assert "sk-test" not in backend.model_id


@pytest.mark.parametrize("scenario, attempts", [("429_once", 2), ("500_twice", 3), ("slow_once", 2)])
def test_transient_failures_are_retried(server, monkeypatch, scenario, attempts):
    backend = backend_for(server, monkeypatch)
    [reply] = backend.generate([request(scenario)])
    backend.close()
    assert reply.error is None and json.loads(reply.text)["frames"]
    assert server.attempts[scenario] == attempts


@pytest.mark.parametrize(
    "scenario, attempts, message",
    [
        ("always_500", 4, "gave up after 4 attempts: HTTP 500"),
        ("always_slow", 4, "no answer within 0.5 s"),
        ("malformed", 1, "malformed chat-completions reply"),
        ("empty_choices", 1, "malformed chat-completions reply"),
    ],
)
def test_failures_become_one_line_errors_not_exceptions(server, monkeypatch, scenario, attempts, message):
    backend = backend_for(server, monkeypatch)
    replies = backend.generate([request(scenario), request("good")])
    backend.close()
    assert replies[0].text is None and message in replies[0].error and "\n" not in replies[0].error
    assert "sk-test-secret" not in replies[0].error
    assert replies[1].error is None  # one bad request does not sink the batch
    assert server.attempts[scenario] == attempts


def test_server_without_json_schema_support_is_asked_without_it(server, monkeypatch):
    backend = backend_for(server, monkeypatch)
    replies = backend.generate([request("no_schema")]) + backend.generate([request("no_schema")])
    backend.close()
    assert all(r.error is None for r in replies)
    with_schema = [b for b in server.bodies if "response_format" in b]
    assert len(with_schema) == 1  # refused once, then never sent again
    assert server.attempts["no_schema"] == 3


def test_a_request_refused_for_another_reason_keeps_the_schema_for_the_next(server, monkeypatch):
    backend = backend_for(server, monkeypatch)
    [refused] = backend.generate([request("bad_request")])
    [good] = backend.generate([request("good")])
    backend.close()
    assert refused.text is None and "HTTP 400" in refused.error and "prompt is too long" in refused.error
    assert server.attempts["bad_request"] == 2  # with the schema, then without: no retries of a 400
    assert good.error is None and "response_format" in server.bodies[-1]


def test_many_requests_in_flight_each_get_their_reply(server, monkeypatch):
    server.latency_s = 0.05
    backend = backend_for(server, monkeypatch, max_concurrency=8)
    replies = backend.generate([request("good", images=1 + i % 3) for i in range(24)])
    backend.close()
    assert [len(json.loads(r.text)["frames"]) for r in replies] == [1 + i % 3 for i in range(24)]


def test_an_image_that_is_not_an_image_is_an_error_for_its_request(server, monkeypatch):
    backend = backend_for(server, monkeypatch)
    [reply] = backend.generate([MllmRequest(images=(b"not an image",), prompt="x")])
    backend.close()
    assert reply.text is None and "not a JPEG, PNG or WebP" in reply.error
    assert server.bodies == []


def test_llm_json_repairer_uses_the_same_client(server, monkeypatch):
    monkeypatch.setenv("SKYSCRIPT_TEST_API_KEY", "sk-test-secret")
    repairer = LlmJsonRepairer.from_server(server.base_url, "gpt-test", api_key_env="SKYSCRIPT_TEST_API_KEY")
    result = clean_raw_output("the model rambled: no json at all", ["kf"], repairer=repairer)
    assert result.outcome is CleanOutcome.FIXED_BY_LLM
    assert result.frames[0].people[0].vad.valence == 6.0
    prompt = server.bodies[0]["messages"][0]["content"]
    assert "the model rambled" in prompt and "response_format" not in server.bodies[0]


def test_unknown_backend_name_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown MLLM backend 'gpt5'; choose one of baseline, openai"):
        load_backend("gpt5")


def test_a_server_that_is_not_there_is_retried_then_an_error(monkeypatch):
    import socket

    with socket.socket() as probe:  # a port on 127.0.0.1 that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    backend = load_backend(
        "openai",
        base_url=f"http://127.0.0.1:{port}/v1",
        model="m",
        api_key_env="",
        max_retries=2,
        backoff_s=0.01,
        timeout_s=2,
    )
    [reply] = backend.generate([request("good")])
    backend.close()
    assert reply.text is None and reply.error.startswith("gave up after 3 attempts: connection failed")

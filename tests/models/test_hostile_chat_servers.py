"""OpenAI-compatible servers that misbehave on purpose: one that trickles a byte at a time
(the overall deadline ends the request however slowly bytes come) and one that echoes the
Authorization header in its error bodies (the key never reaches a loss, an exception or a log)."""

from __future__ import annotations

import datetime
import logging
import ssl
import time
import traceback

import pytest
from fake_chat_server import FakeChatServer

from skyscript_assets.models.llm import LlmJsonRepairer
from skyscript_assets.models.mllm import MllmRequest, load_backend
from skyscript_assets.models.mllm.openai_chat import ChatError, OpenAIChatClient
from skyscript_assets.models.redact import redact
from skyscript_assets.models.text_generation import GenerationFailed, load_text_generator
from skyscript_assets.stages.annotation.clean_json import CleanOutcome, clean_raw_output

KEY_ENV = "SKYSCRIPT_TEST_HOSTILE_KEY"
KEY = "sk-proj-PLANTEDk3y0123456789abcdefGHIJ"
SLACK_S = 1.5  # what the deadline may be overshot by on a busy two-core machine
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32  # magic bytes are all the openai backend checks before sending


@pytest.fixture
def server():
    with FakeChatServer(trickle_s=0.2) as fake:
        yield fake


@pytest.fixture
def key(monkeypatch) -> str:
    monkeypatch.setenv(KEY_ENV, KEY)
    return KEY


def client_config(server, **overrides) -> dict:
    return {
        "base_url": server.base_url,
        "model": "m",
        "api_key_env": KEY_ENV,
        "timeout_s": 1.0,
        "deadline_s": 2.0,
        "max_retries": 3,
        "backoff_s": 0.01,
        **overrides,
    }


def request(scenario: str) -> MllmRequest:
    return MllmRequest(images=(PNG,), prompt=f"annotate. scenario={scenario}")


def assert_no_trace_of_the_key(text: str) -> None:
    assert KEY not in text
    assert "PLANTEDk3y" not in text and "0123456789abcdef" not in text


# ---- the overall deadline ---------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", ["trickle", "trickle_head"])
def test_a_trickling_server_is_cut_off_at_the_deadline(server, key, scenario):
    """Every socket read gets a byte within 0.2 s, far below timeout_s, so only an overall
    deadline can end the request; it becomes that request's error, in one line."""
    backend = load_backend("openai", **client_config(server), max_concurrency=2)
    started = time.monotonic()
    replies = backend.generate([request(scenario), request("good")])
    elapsed = time.monotonic() - started
    backend.close()
    assert replies[0].text is None
    assert replies[0].error == "deadline: no complete reply within 2 s"
    assert replies[1].error is None and replies[1].text  # the other request in flight is untouched
    assert 2.0 <= elapsed < 2.0 + SLACK_S
    assert server.attempts[scenario] == 1  # a deadline is final: no retry after it


def test_the_deadline_covers_the_retries_too(server, key):
    """A server failing with 500 and a long backoff: the request ends when no retry fits in
    what is left of its deadline, with the last failure in its one-line reason."""
    client = OpenAIChatClient(**client_config(server, backoff_s=5.0, max_backoff_s=5.0))
    started = time.monotonic()
    with pytest.raises(ChatError) as failure:
        client.complete([{"role": "user", "content": "scenario=always_500"}])
    assert time.monotonic() - started < 2.0 + SLACK_S
    assert str(failure.value).startswith("deadline: no complete reply within 2 s; last attempt: HTTP 500")


def test_text_generation_and_json_repair_requests_have_the_deadline(server, key):
    generator = load_text_generator("openai", **client_config(server))
    started = time.monotonic()
    with pytest.raises(GenerationFailed, match="^deadline: no complete reply within 2 s$"):
        generator.generate("restore this. scenario=trickle", n=3, seed=1, temperature=0.9, max_tokens=64)
    assert time.monotonic() - started < 2.0 + SLACK_S

    repairer = LlmJsonRepairer.from_server(**client_config(server))
    started = time.monotonic()
    result = clean_raw_output("the model rambled: no json at all. scenario=trickle", ["kf1"], repairer=repairer)
    assert time.monotonic() - started < 2.0 + SLACK_S
    assert result.outcome is CleanOutcome.LOST
    [loss] = result.losses
    assert loss.reason == "llm_repair_failed" and "deadline: no complete reply within 2 s" in loss.detail


def test_the_default_deadline_is_120_s():
    assert OpenAIChatClient("http://127.0.0.1:9/v1", "m").deadline_s == 120.0
    with pytest.raises(ValueError):
        OpenAIChatClient("http://127.0.0.1:9/v1", "m", deadline_s=0)


def _self_signed_tls(tmp_path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context trusting it) for 127.0.0.1, made here, never downloaded."""
    pytest.importorskip("cryptography")
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .sign(private, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert_file, key_file)
    client_context = ssl.create_default_context(cafile=str(cert_file))
    return server_context, client_context


def test_the_deadline_holds_over_https(tmp_path, key, monkeypatch):
    server_context, client_context = _self_signed_tls(tmp_path)
    # what http.client uses when no context is given: here, one that trusts the test certificate
    monkeypatch.setattr(ssl, "_create_default_https_context", lambda *a, **k: client_context)
    with FakeChatServer(trickle_s=0.2, tls=server_context) as fake:
        client = OpenAIChatClient(**client_config(fake))
        assert "frames" in client.complete([{"role": "user", "content": "scenario=good"}])  # TLS itself works
        started = time.monotonic()
        with pytest.raises(ChatError, match="^deadline: no complete reply within 2 s$"):
            client.complete([{"role": "user", "content": "scenario=trickle"}])
        assert time.monotonic() - started < 2.0 + SLACK_S


# ---- redaction ----------------------------------------------------------------------------------------


def test_a_401_echoing_the_key_leaves_no_trace_of_it(server, key, caplog):
    caplog.set_level(logging.DEBUG)
    backend = load_backend("openai", **client_config(server))
    [reply] = backend.generate([request("echo_auth")])
    backend.close()
    assert reply.text is None and reply.error.startswith("HTTP 401 from ")
    assert "invalid credentials" in reply.error and "[redacted]" in reply.error  # still says what went wrong
    assert "\n" not in reply.error and len(reply.error) <= 300
    assert_no_trace_of_the_key(reply.error)
    assert server.headers[0]["Authorization"] == f"Bearer {KEY}"  # the key did go out, and did come back
    assert_no_trace_of_the_key(caplog.text)


def test_retried_echoes_are_redacted_in_logs_and_in_the_final_error(server, key, caplog):
    caplog.set_level(logging.DEBUG)
    client = OpenAIChatClient(**client_config(server, deadline_s=30.0, max_retries=2))
    with pytest.raises(ChatError) as failure:
        client.complete([{"role": "user", "content": "scenario=echo_auth_503"}])
    assert server.attempts["echo_auth_503"] == 3
    assert "retry 1 of 2" in caplog.text  # the retries were logged ...
    assert_no_trace_of_the_key(caplog.text)  # ... without the key
    assert str(failure.value).startswith("gave up after 3 attempts: HTTP 503")
    assert_no_trace_of_the_key(str(failure.value))
    # nor anywhere in what Dagster would store for an uncaught error: the message and its chain
    assert_no_trace_of_the_key("".join(traceback.format_exception(failure.value)))


def test_text_generation_and_json_repair_losses_hold_no_key(server, key, caplog):
    caplog.set_level(logging.DEBUG)
    generator = load_text_generator("openai", **client_config(server))
    with pytest.raises(GenerationFailed) as failure:
        generator.generate("restore. scenario=echo_auth", n=2, seed=1, temperature=0.9, max_tokens=64)
    assert "HTTP 401" in str(failure.value)
    assert_no_trace_of_the_key(str(failure.value))
    assert_no_trace_of_the_key("".join(traceback.format_exception(failure.value)))

    repairer = LlmJsonRepairer.from_server(**client_config(server))
    result = clean_raw_output("the model rambled: no json at all. scenario=echo_auth", ["kf1"], repairer=repairer)
    [loss] = result.losses
    assert loss.reason == "llm_repair_failed" and "HTTP 401" in loss.detail
    assert_no_trace_of_the_key(loss.detail)
    assert_no_trace_of_the_key(caplog.text)


@pytest.mark.parametrize(
    "text",
    [
        f"Authorization: Bearer {KEY}\r\nHost: x",
        f'{{"authorization": "Bearer {KEY}"}}',
        f"{{'Authorization': 'Bearer {KEY}'}}",
        f"x-api-key: {KEY}",
        f"key was {KEY[:20]}***",
        f"proxy said: bearer {KEY}",
        f"https://user:{KEY}@host/v1 failed",
        f"https://host/v1?api-key={KEY}&x=1",
    ],
)
def test_redact_removes_keys_and_credential_headers(text):
    assert_no_trace_of_the_key(redact(text))


def test_redact_removes_the_configured_secret_and_key_like_strings():
    assert redact("the key is opensesame-42", secrets=["opensesame-42"]) == "the key is [redacted]"
    assert redact("a body cut short after opensesa", secrets=["opensesame-42"]) == "a body cut short after [redacted]"
    assert redact("hf_" + "a1B2" * 9) == "[redacted]"
    assert redact("token " + "0123456789abcdef" * 3) == "token [redacted]"
    jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJl"
    assert redact(f"jwt {jwt} rejected") == "jwt [redacted] rejected"


def test_redact_keeps_ordinary_diagnostics_on_one_bounded_line():
    text = "model Qwen2-VL-72B-Instruct-AWQ not found\n  at /srv/models/qwen2/config.json: 5000 tokens, basic check"
    assert redact(text) == " ".join(text.split())
    long = redact("word " * 500)
    assert len(long) <= 300 and "\n" not in long

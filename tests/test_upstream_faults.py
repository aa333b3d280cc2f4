"""Upstream faults through real Envoy, seen by the official SDKs: a provider that answers garbage,
breaks off or garbles a stream, storms 429s or fails every attempt must give each client an error
in its own protocol's shape (never a silently complete answer), and Envoy keeps serving after it
(the next normal request succeeds; no panic or wasm trap in Envoy's log). Faults come from the
mock's /_mock/faults and are cleared after each test.

Connection refused and a slow first byte need what the demo deliberately lacks (a dead endpoint;
an idle timeout short enough to wait for): those tests run a second Envoy on the demo config with
exactly those two edits (`strict_envoy`)."""

from __future__ import annotations

import os
import time
import uuid

import anthropic
import httpx
import httpx2
import ollama
import openai
import pytest
import yaml

from conftest import Envoy, assert_no_trap, free_port, start_envoy, stop
from weir_clients import DEMO_KEY, PROTOCOLS, TIMEOUT, chat

MOCK: dict = {}  # the session mock's url, for assert_envoy_healthy
PROTO_STREAM = [(p, s) for p in PROTOCOLS for s in (False, True)]


@pytest.fixture
def faults(envoy, mock):
    """Sets mock fault rules for one test; clears them (and checks Envoy's log) afterwards."""
    MOCK["url"] = mock.url

    def set_rules(*rules):
        httpx.post(mock.url + "/_mock/faults", json=list(rules), timeout=10).raise_for_status()
    yield set_rules
    httpx.delete(mock.url + "/_mock/faults", timeout=10).raise_for_status()


def assert_envoy_healthy(envoy, protocol: str, model: str) -> None:
    """With the faults cleared, a normal request succeeds and no Envoy's log shows a VM trap."""
    httpx.delete(MOCK["url"] + "/_mock/faults", timeout=10).raise_for_status()
    text = f"after fault {uuid.uuid4().hex[:8]}"
    deadline = time.monotonic() + 5  # a 429 cooldown (Retry-After: 1) may still be running
    while True:
        try:
            assert chat(envoy.url, protocol, model, text, stream=False) == f"echo: {text}"
            break
        except (openai.RateLimitError, anthropic.RateLimitError, ollama.ResponseError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)
    assert_no_trap("during this fault")


def send(envoy, protocol: str, model: str, stream: bool):
    """One chat via the SDK. Returns ("ok", text) for a complete answer, else ("error", status,
    headers, body) for an HTTP error, or ("raised", exception) for an error inside a stream."""
    text = f"fault probe {uuid.uuid4().hex[:8]}"
    msgs = [{"role": "user", "content": text}]
    seen: dict = {}

    def keep(resp: httpx.Response) -> None:
        seen["headers"] = resp.headers

    try:
        if protocol == "openai":
            c = openai.OpenAI(base_url=envoy.url + "/v1", api_key=DEMO_KEY, max_retries=0, timeout=TIMEOUT)
            if not stream:
                return ("ok", c.chat.completions.create(model=model, messages=msgs).choices[0].message.content)
            chunks = c.chat.completions.create(model=model, messages=msgs, stream=True)
            return ("ok", "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices))
        if protocol == "anthropic":
            c = anthropic.Anthropic(base_url=envoy.url, api_key=DEMO_KEY, max_retries=0, timeout=TIMEOUT)
            if not stream:
                m = c.messages.create(model=model, max_tokens=64, messages=msgs)
                return ("ok", "".join(b.text for b in m.content if b.type == "text"))
            with c.messages.stream(model=model, max_tokens=64, messages=msgs) as s:
                return ("ok", "".join(s.text_stream))
        if protocol == "responses":
            c = openai.OpenAI(base_url=envoy.url + "/v1", api_key=DEMO_KEY, max_retries=0, timeout=TIMEOUT)
            if not stream:
                return ("ok", c.responses.create(model=model, input=text).output_text)
            with c.responses.stream(model=model, input=text) as s:
                for ev in s:
                    if ev.type in ("response.failed", "error"):  # the answer failed mid-stream
                        return ("raised", ev)
                return ("ok", s.get_final_response().output_text)
        c = ollama.Client(host=envoy.url, headers={"Authorization": f"Bearer {DEMO_KEY}"}, timeout=TIMEOUT,
                          event_hooks={"response": [keep]})
        if not stream:
            return ("ok", c.chat(model=model, messages=msgs, stream=False).message.content)
        return ("ok", "".join(p.message.content or "" for p in c.chat(model=model, messages=msgs, stream=True)))
    except (openai.APIStatusError, anthropic.APIStatusError) as e:
        if e.status_code == 200:  # Anthropic's SDK: an `error` event inside a 200 stream
            return ("raised", e)
        try:
            body = e.response.json()
        except Exception:  # noqa: BLE001  (a body that is not JSON fails the shape check below)
            body = None
        return ("error", e.status_code, e.response.headers, body)
    except ollama.ResponseError as e:
        if e.status_code == -1:  # an error line inside a 200 NDJSON stream
            return ("raised", e)
        return ("error", e.status_code, seen.get("headers", {}), {"error": e.error})
    except (openai.APIError, anthropic.APIError) as e:  # an error event inside a 200 stream
        return ("raised", e)
    except RuntimeError as e:  # the Responses stream helper: no `response.completed` came
        return ("raised", e)
    except (httpx.TransportError, httpx2.TransportError) as e:
        # The upstream connection was reset mid-stream: Envoy resets the client's stream too, so
        # the SDK sees an incomplete chunked body (no room for an error event, but never "done").
        return ("raised", e)


def assert_client_shaped(protocol: str, body) -> str:
    """The error body is the client protocol's own error shape; returns its message."""
    assert isinstance(body, dict), body
    if protocol in ("openai", "responses"):  # the Responses API's errors are OpenAI's
        assert isinstance(body["error"]["message"], str) and body["error"].get("type"), body
        return body["error"]["message"]
    if protocol == "anthropic":
        assert body["type"] == "error" and body["error"]["type"], body
        return body["error"]["message"]
    assert isinstance(body["error"], str), body
    return body["error"]


@pytest.mark.parametrize("protocol,stream", PROTO_STREAM)
def test_invalid_json_with_200_is_a_502_in_the_clients_shape(envoy, faults, protocol, stream):
    # Gemini-format provider; non-streamed body is not JSON, streamed body is not SSE JSON.
    faults({"provider": "gemini", "status": 200, "body": "<html>definitely not json",
            "headers": {"Content-Type": "text/event-stream" if stream else "application/json"}})
    got = send(envoy, protocol, "mock-gemini", stream)
    assert got[0] != "ok", f"a garbage answer looked complete: {got!r}"
    if got[0] == "error":
        assert got[1] == 502, got
        assert_client_shaped(protocol, got[3])
    assert_envoy_healthy(envoy, protocol, "mock-gemini")


# Each client protocol against a provider format other than its own.
@pytest.mark.parametrize("protocol,model,provider", [("openai", "mock-anthropic", "anthropic"),
                                                     ("anthropic", "mock-ollama", "ollama"),
                                                     ("ollama", "mock-openai", "openai"),
                                                     ("responses", "mock-gemini", "gemini"),
                                                     ("openai", "mock-responses", "openai-responses")])
def test_truncated_stream_makes_the_sdk_raise(envoy, faults, protocol, model, provider):
    # Two chunks of a good stream, then a TCP reset: never a silently complete answer.
    faults({"provider": provider, "status": 200, "truncate_stream_after": 2})
    got = send(envoy, protocol, model, stream=True)
    assert got[0] != "ok", f"a truncated stream looked complete: {got!r}"
    if got[0] == "error":
        assert got[1] >= 500, got
        assert_client_shaped(protocol, got[3])
    assert_envoy_healthy(envoy, protocol, model)


@pytest.mark.parametrize("protocol,model,provider,garbage", [
    ("ollama", "mock-anthropic", "anthropic", "event: content_block_delta\ndata: {\"type\": \"content_block_delta\", \"ind"),
    ("anthropic", "mock-openai", "openai", "data: {\"id\":\"x\",\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\ndata: {]]\n\n"),
    ("openai", "mock-ollama", "ollama", "{\"model\":\"llama3.2\",\"message\":{\"role\":\"assistant\",\"content\":\"h\"},\"done\":false}\n{nope\n"),
    ("anthropic", "mock-responses", "openai-responses",
     "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"r\"}}\n\n"
     "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.del"),
], ids=["anthropic-sse-cut-mid-json", "openai-sse-bad-json", "ollama-ndjson-bad-line", "responses-sse-cut-mid-json"])
def test_garbled_stream_makes_the_sdk_raise(envoy, faults, protocol, model, provider, garbage):
    # A 200 stream whose frames are cut mid-JSON or are not JSON, then a clean end.
    ctype = "application/x-ndjson" if provider == "ollama" else "text/event-stream"
    faults({"provider": provider, "status": 200, "body": garbage, "headers": {"Content-Type": ctype}})
    got = send(envoy, protocol, model, stream=True)
    assert got[0] != "ok", f"a garbled stream looked complete: {got!r}"
    if got[0] == "error":
        assert got[1] == 502, got
        assert_client_shaped(protocol, got[3])
    assert_envoy_healthy(envoy, protocol, model)


@pytest.mark.parametrize("protocol,stream", PROTO_STREAM)
def test_429_storm_on_a_one_key_provider_is_429_with_retry_after(envoy, faults, protocol, stream):
    # mock-mistral has one key; Envoy retries 429 twice (retriable_status_codes), all answered 429.
    # Retry-After: 1 keeps weir's key cooldown short for the tests that follow.
    faults({"provider": "mistral", "status": 429, "headers": {"Retry-After": "1"}})
    got = send(envoy, protocol, "mock-mistral", stream)
    assert got[0] == "error" and got[1] == 429, got
    assert_client_shaped(protocol, got[3])
    assert "retry-after" in {k.lower() for k in got[2].keys()}, dict(got[2])
    assert int(got[2]["retry-after"]) >= 1
    assert_envoy_healthy(envoy, protocol, "mock-mistral")


@pytest.mark.parametrize("protocol,stream", PROTO_STREAM)
def test_5xx_on_every_attempt_is_5xx_in_the_clients_shape(envoy, faults, mock, protocol, stream):
    # times: 3 = the first try and Envoy's two retries; fewer than outlier detection's
    # consecutive_5xx (5), and the check request after it resets the count.
    faults({"provider": "openai-compatible", "status": 503, "times": 3})
    got = send(envoy, protocol, "mock-vllm", stream)
    assert got[0] == "error" and 500 <= got[1] <= 599, got
    assert_client_shaped(protocol, got[3])
    attempts = [r for r in mock.requests("openai-compatible") if r.get("fault")]
    assert len(attempts) == 3, f"expected 3 attempts (1 + 2 retries), mock saw {len(attempts)}"
    assert_envoy_healthy(envoy, protocol, "mock-vllm")


IDLE_TIMEOUT_S = 2


@pytest.fixture(scope="module")
def strict_envoy(envoy, mock_server, tmp_path_factory):
    """The demo config with two edits: the route's idle timeout is IDLE_TIMEOUT_S, and mock_vllm's
    only endpoint is a port nothing listens on (connection refused)."""
    tmp = tmp_path_factory.mktemp("strict-envoy")
    with open(envoy.config, encoding="utf-8") as f:
        cfg = yaml.safe_load(f)
    port, admin = free_port(), free_port()
    cfg["admin"]["address"]["socket_address"]["port_value"] = admin
    listener = cfg["static_resources"]["listeners"][0]
    listener["address"]["socket_address"]["port_value"] = port
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    for vh in hcm["route_config"]["virtual_hosts"]:
        for r in vh["routes"]:
            r["route"]["idle_timeout"] = f"{IDLE_TIMEOUT_S}s"
    for access_log in hcm.get("access_log", []):
        access_log["typed_config"]["path"] = str(tmp / "access.log")
    dead = free_port()  # bound and released: nothing listens there
    vllm = next(c for c in cfg["static_resources"]["clusters"] if c["name"] == "mock_vllm")
    for group in vllm["load_assignment"]["endpoints"]:
        for ep in group["lb_endpoints"]:
            ep["endpoint"]["address"]["socket_address"]["port_value"] = dead
    config = str(tmp / "strict.yaml")
    with open(config, "w", encoding="utf-8") as f:
        yaml.safe_dump(cfg, f)
    log = str(tmp / "envoy.log")
    proc = start_envoy(config, str(tmp), log, port=port, admin_url=f"http://127.0.0.1:{admin}",
                       concurrency=2, log_args=("--log-level", "info", "--file-flush-interval-msec", "250"))
    try:
        yield Envoy(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{admin}", config, log,
                    str(tmp / "access.log"), proc)
    finally:
        stop(proc)


def outcomes(envoy, model: str, outcome: str, at_least: int = 0) -> int:
    """weir_requests_total for this model and outcome, from Envoy's Prometheus output. Counters
    are recorded in the log phase, just after the client has its answer: polls up to 2 s for
    `at_least`."""
    want = (f'model="{model}"', f'outcome="{outcome}"')
    deadline = time.monotonic() + 2
    while True:
        text = httpx.get(envoy.admin_url + "/stats/prometheus", timeout=10).text
        total = sum(int(float(line.rsplit(" ", 1)[1])) for line in text.splitlines()
                    if line.startswith("weir_requests_total{") and all(w in line for w in want))
        if total >= at_least or time.monotonic() > deadline:
            return total
        time.sleep(0.1)


@pytest.mark.parametrize("protocol,stream", PROTO_STREAM)
def test_slow_first_byte_beyond_the_idle_timeout_is_504_in_the_clients_shape(strict_envoy, faults, mock,
                                                                             protocol, stream):
    faults({"provider": "openai", "host": "openai.mock", "status": 200, "delay_ms": (IDLE_TIMEOUT_S + 3) * 1000,
            "times": 1})
    before = outcomes(strict_envoy, "mock-openai", "timeout")
    started = time.monotonic()
    got = send(strict_envoy, protocol, "mock-openai", stream)
    took = time.monotonic() - started
    assert got[0] == "error" and got[1] == 504, got
    assert "timeout" in assert_client_shaped(protocol, got[3]).lower(), got
    assert took < IDLE_TIMEOUT_S + 2, f"the client waited {took:.1f} s for a {IDLE_TIMEOUT_S} s timeout"
    assert outcomes(strict_envoy, "mock-openai", "timeout", at_least=before + 1) == before + 1
    assert_envoy_healthy(strict_envoy, protocol, "mock-openai")


@pytest.mark.parametrize("protocol,stream", PROTO_STREAM)
def test_connection_refused_is_503_in_the_clients_shape(strict_envoy, protocol, stream):
    before = outcomes(strict_envoy, "mock-vllm", "unavailable")
    started = time.monotonic()
    got = send(strict_envoy, protocol, "mock-vllm", stream)
    assert got[0] == "error" and got[1] == 503, got
    message = assert_client_shaped(protocol, got[3])
    assert "connect" in message.lower(), message
    assert time.monotonic() - started < 10
    assert outcomes(strict_envoy, "mock-vllm", "unavailable", at_least=before + 1) == before + 1
    assert_envoy_healthy(strict_envoy, protocol, "mock-openai")


def test_envoys_are_alive_after_all_faults(envoy, strict_envoy):
    # Their logs are checked for traps after every test (conftest); here: neither Envoy died.
    assert envoy.proc.poll() is None and strict_envoy.proc.poll() is None

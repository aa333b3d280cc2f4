"""Headers across the gateway through real Envoy, both ways by allowlist: of a provider's response
headers a client sees only content type, retry-after, the provider's request id and weir's own,
never its account ids, account-wide rate limits, cookies, CORS, HSTS or redirects; of a client's
request headers a provider gets only what weir sets, Envoy's tracing, and what its
`extra_request_headers` name (the demo's mocks: `x-mock-test-id`)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from weir_clients import DEMO_KEY

AUTH = {"authorization": f"Bearer {DEMO_KEY}", "content-type": "application/json"}
HI = [{"role": "user", "content": "hi"}]

# What a real provider's edge sends along with an answer, none of it for a tenant's eyes.
LEAKY = {
    "openai-organization": "acme-corp",
    "openai-project": "proj_secret",
    "anthropic-organization-id": "org-secret",
    "x-ratelimit-limit-requests": "10000",
    "x-ratelimit-remaining-tokens": "149990",
    "anthropic-ratelimit-requests-remaining": "3999",
    "set-cookie": "__cf_bm=secret; path=/; HttpOnly",
    "access-control-allow-origin": "*",
    "strict-transport-security": "max-age=31536000; includeSubDomains",
    "location": "https://evil.example/",
    "x-request-id": "req_mock_kept",
    "retry-after": "0",
}
NEVER = [n for n in LEAKY if n not in ("x-request-id", "retry-after")]


def faults(mock, *rules: dict) -> None:
    httpx.post(mock.url + "/_mock/faults", json=list(rules), timeout=10).raise_for_status()


@pytest.mark.parametrize("stream", [False, True])
def test_provider_response_headers_pass_only_by_allowlist(envoy, mock, stream):
    faults(mock, {"provider": "openai", "host": "openai.mock", "status": 200, "headers": LEAKY})
    r = httpx.post(envoy.url + "/v1/chat/completions", headers=AUTH, timeout=30,
                   json={"model": "mock-openai", "messages": HI, "stream": stream})
    assert r.status_code == 200, r.text
    assert ("data: " in r.text) if stream else ("echo: hi" in r.text), r.text
    assert [e["fault"] is not None for e in mock.requests(provider="openai")] == [True], "the headers were sent"
    leaked = {n: r.headers[n] for n in NEVER if n in r.headers}
    assert not leaked, f"provider headers reached the client: {leaked}"
    assert r.headers["x-request-id"] == "req_mock_kept"
    assert r.headers["retry-after"] == "0"
    assert r.headers["x-weir-served-by"] == "mock-openai", "weir's own headers still come"
    assert not any(n.startswith("x-ratelimit") for n in r.headers), "the demo key has no limits of its own"


def test_an_anthropic_providers_organization_never_reaches_the_client(envoy, mock):
    """The Anthropic mock sends `anthropic-organization-id` with every answer, like Anthropic."""
    r = httpx.post(envoy.url + "/v1/chat/completions", headers=AUTH, timeout=30,
                   json={"model": "mock-anthropic", "messages": HI})
    assert r.status_code == 200, r.text
    assert "anthropic-organization-id" not in r.headers, dict(r.headers)
    assert r.headers["request-id"].startswith("req_"), "the provider's request id is the client's to quote"


# What a client (or something between it and Envoy) may add, none of it for a provider.
CLIENT_EXTRAS = {
    "cookie": "session=client-secret",
    "proxy-authorization": "Basic Y2xpZW50OnNlY3JldA==",
    "forwarded": "for=10.1.2.3;proto=https",
    "x-real-ip": "10.1.2.3",
    "x-custom-header": "anything",
    "openai-organization": "org-client-picked",
    "user-agent": "weir-test/1.0",
}


@pytest.mark.parametrize("model", ["mock-openai", "mock-anthropic", "mock-gemini", "mock-bedrock"])
def test_client_request_headers_reach_providers_only_by_their_allowlist(envoy, mock, model):
    test_id = f"headers-{uuid.uuid4().hex}"
    r = httpx.post(envoy.url + "/v1/chat/completions", timeout=30,
                   headers={**AUTH, **CLIENT_EXTRAS, "x-mock-test-id": test_id,
                            "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
                   json={"model": model, "messages": HI})
    assert r.status_code == 200, r.text
    [seen] = mock.requests(test_id=test_id)
    got = seen["headers"]
    assert got["x-mock-test-id"] == test_id, "the provider's extra_request_headers pass it"
    leaked = {n: got[n] for n in CLIENT_EXTRAS if n in got}
    assert not leaked, f"client headers reached the provider: {leaked}"
    assert got.get("traceparent", "").endswith("-01"), "Envoy's tracing headers stay: " + repr(got)
    assert not [n for n in got if n.startswith("x-envoy-")], got

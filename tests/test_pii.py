"""PII: the provider sees placeholders (<EMAIL_1>, ...) instead of the originals, and the client
gets the originals back in the answer (restore), in every protocol, plain and streamed."""

from __future__ import annotations

import re

import anthropic
import ollama
import openai
import pytest

from weir_clients import (DEMO_MODELS, PROTOCOLS, anthropic_client, chat, dumps, ollama_client,
                          openai_client)

EMAIL, PHONE = "jane.doe@example.com", "+1 415 555 2671"
CARD, IBAN = "4111 1111 1111 1111", "GB29 NWBK 6016 1331 9268 19"
PROMPT = f"Write to {EMAIL} or call {PHONE}; card {CARD}, IBAN {IBAN}. Merci 🙂"
ORIGINALS = [EMAIL, PHONE, CARD, IBAN, "jane.doe", "4111111111111111", "GB29NWBK60161331926819",
             "555 2671", "1331 9268"]
# Assumption: placeholders are named after weir's detectors: email, phone, credit_card, iban.
PLACEHOLDERS = ["EMAIL", "PHONE", "CREDIT_CARD", "IBAN"]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("model,provider", [(m, v[0]) for m, v in DEMO_MODELS.items()])
def test_provider_sees_placeholders_client_sees_originals(envoy, mock, model, provider, protocol, stream):
    answer = chat(envoy.url, protocol, model, PROMPT, stream)
    assert answer == "echo: " + PROMPT  # restored, in order, nothing else changed
    recs = mock.requests()
    assert [r["provider"] for r in recs] == [provider] and recs[0]["valid"], recs
    sent = dumps(recs[0]["body"])
    leaked = [o for o in ORIGINALS if o in sent]
    assert not leaked, f"the provider received {leaked}: {sent}"
    assert "<EMAIL_1>" in sent
    for name in PLACEHOLDERS:
        assert re.search(rf"<{name}_\d+>", sent), f"no <{name}_n> placeholder in {sent}"


def test_the_same_value_gets_the_same_placeholder(envoy, mock):
    prompt = f"{EMAIL} and again {EMAIL}, but other@example.org"
    assert chat(envoy.url, "openai", "mock-openai", prompt, False) == "echo: " + prompt
    sent = dumps(mock.requests()[0]["body"])
    assert sent.count("<EMAIL_1>") == 2 and "<EMAIL_2>" in sent and EMAIL not in sent


# --- the demo's PII policy: a custom detector, an allowlist, a blocked detector ----------------

def test_custom_detector_employee_id_gets_a_placeholder_and_is_restored(envoy, mock):
    prompt = "Escalate EMP-123456 and EMP-654321 (not EMP-9876543) today"
    for protocol in PROTOCOLS:
        mock.clear()
        assert chat(envoy.url, protocol, "mock-openai", prompt, False) == "echo: " + prompt
        sent = dumps(mock.requests()[0]["body"])
        assert "123456" not in sent and "654321" not in sent, sent
        assert "<EMPLOYEE_ID_1>" in sent and "<EMPLOYEE_ID_2>" in sent, sent
        assert "(not EMP-9876543)" in sent  # \b...\b: seven digits are not an employee id


def test_allowlisted_address_reaches_the_provider_unchanged(envoy, mock):
    prompt = f"Mail support@weir.example or SUPPORT@Weir.Example, not {EMAIL}"
    assert chat(envoy.url, "openai", "mock-openai", prompt, False) == "echo: " + prompt
    sent = dumps(mock.requests()[0]["body"])
    assert "Mail support@weir.example or SUPPORT@Weir.Example, not <EMAIL_1>" in sent, sent
    assert EMAIL not in sent and "<EMAIL_2>" not in sent


PEM = ("-----BEGIN PRIVATE KEY-----\n"
       "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n"
       "MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu\n"
       "-----END PRIVATE KEY-----")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_private_key_is_blocked_with_400_in_the_clients_shape(envoy, mock, protocol):
    prompt = f"Why does this key not work? {PEM} Mail {EMAIL}"
    msgs = [{"role": "user", "content": prompt}]
    if protocol == "openai":
        with pytest.raises(openai.BadRequestError) as exc:
            openai_client(envoy.url).chat.completions.create(model="mock-anthropic", messages=msgs)
        message = exc.value.body["message"]
        assert exc.value.body["type"] == "invalid_request_error"
    elif protocol == "anthropic":
        with pytest.raises(anthropic.BadRequestError) as exc:
            anthropic_client(envoy.url).messages.create(model="mock-openai", max_tokens=64, messages=msgs)
        assert exc.value.body["type"] == "error"
        assert exc.value.body["error"]["type"] == "invalid_request_error"
        message = exc.value.body["error"]["message"]
    elif protocol == "responses":
        with pytest.raises(openai.BadRequestError) as exc:
            openai_client(envoy.url).responses.create(model="mock-gemini", input=prompt)
        message = exc.value.body["message"]
        assert exc.value.body["type"] == "invalid_request_error"
    else:
        with pytest.raises(ollama.ResponseError) as exc:
            ollama_client(envoy.url).chat(model="mock-openai", messages=msgs, stream=False)
        message = exc.value.error
    assert exc.value.status_code == 400
    assert "contains private_key data" in message, message
    for part in ("BEGIN PRIVATE KEY", "MIIE", "C7VJTUt9Us8", EMAIL):
        assert part not in message, message
    assert mock.requests() == []

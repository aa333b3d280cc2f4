"""PII: the provider sees placeholders (<EMAIL_1>, ...) instead of the originals, and the client
gets the originals back in the answer (restore), in every protocol, plain and streamed."""

from __future__ import annotations

import json
import re
import time

import anthropic
import ollama
import openai
import pytest

from weir_clients import (DEMO_MODELS, ONCE_KEY, PROTOCOLS, anthropic_client, chat, dumps,
                          ollama_client, openai_client)

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


def test_disguised_values_are_scrubbed_and_restored_as_sent(envoy, mock):
    # A full-width address and a card number split by zero-width spaces (docs/pii.md,
    # "Normalisation"): the provider sees placeholders, and restore puts back what was sent.
    wide_mail = "ｊａｎｅ．ｄｏｅ＠ｅｘａｍｐｌｅ．ｃｏｍ"
    split_card = "\u200b".join(["4111", "1111", "1111", "1111"])
    prompt = f"Mail {wide_mail}, card {split_card}."
    answer = openai_client(envoy.url).chat.completions.create(
        model="mock-openai", messages=[{"role": "user", "content": prompt}])
    sent = dumps(mock.requests()[0]["body"])
    assert "Mail <EMAIL_1>, card <CREDIT_CARD_1>." in sent, sent
    for leak in (wide_mail, split_card, "ｊａｎｅ", "4111\u200b1111", EMAIL, "4111111111111111"):
        assert leak not in sent, f"the provider received {leak!r}: {sent}"
    assert answer.choices[0].message.content == "echo: " + prompt


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_placeholder_the_client_typed_comes_back_as_typed(envoy, mock, protocol, stream):
    # The client's own "<EMAIL_1>" and weir's placeholder for a real address must not be one
    # token to the provider, or the echo would put the address where the client typed the text.
    prompt = f"Fill <EMAIL_1> and <PHONE_1> in the template, then mail {EMAIL}"
    assert chat(envoy.url, protocol, "mock-openai", prompt, stream) == "echo: " + prompt
    sent = dumps(mock.requests()[0]["body"])
    assert EMAIL not in sent, sent
    assert "Fill <EMAIL_1> and <PHONE_1> in the template, then mail <EMAIL_2>" in sent, sent


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


# --- abuse: what one request may cost a worker ---------------------------------------------

# Shapes that made the scan quadratic (17 s of a worker for 400 KB of the first): 1 MB of each.
ADVERSARIAL = {"dotted digits": "1.1.1.", "jwt-like": "eyJaaaaaaaaa.", "local parts": "a.b-c+d"}


@pytest.mark.parametrize("unit", ADVERSARIAL.values(), ids=ADVERSARIAL.keys())
def test_an_adversarial_megabyte_prompt_is_scanned_promptly(envoy, mock, unit):
    prompt = unit * (1_000_000 // len(unit)) + f" mail {EMAIL}"
    started = time.monotonic()
    answer = openai_client(envoy.url).chat.completions.create(
        model="mock-openai", messages=[{"role": "user", "content": prompt}])
    elapsed = time.monotonic() - started
    assert answer.choices[0].message.content == "echo: " + prompt
    assert EMAIL not in dumps(mock.requests()[0]["body"]), "still scrubbed"
    # Linear: well under a second of scanning here; quadratic was many minutes.
    assert elapsed < 15, f"{elapsed:.1f} s"


def test_a_key_over_its_limit_gets_its_429_without_a_scan(envoy, mock):
    client = openai_client(envoy.url, ONCE_KEY)
    client.chat.completions.create(model="mock-openai", messages=[{"role": "user", "content": "hi"}])
    marker = "1.1.1." * 170_000 + f" mail {EMAIL}"
    started = time.monotonic()
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="mock-openai",
                                       messages=[{"role": "user", "content": marker}])
    assert time.monotonic() - started < 15
    assert len(mock.requests()) == 1, "the refused request never went upstream"
    time.sleep(0.6)  # the access log is flushed every 250 ms
    with open(envoy.access_log, encoding="utf-8") as f:
        lines = [json.loads(line) for line in f if line.strip()]
    mine = [json.loads(line["weir"]) for line in lines if line.get("weir") not in (None, "", "-")]
    refused = [s for s in mine if s.get("key") == "once" and s.get("status") == 429]
    assert refused, "no access log entry for the refused request"
    # Scanned, its address would be counted under pii.
    assert not refused[-1].get("pii"), refused[-1]


def test_user_ids_and_stop_sequences_are_scrubbed_too(envoy, mock):
    openai_client(envoy.url).chat.completions.create(
        model="mock-openai", messages=[{"role": "user", "content": "hi"}],
        user=EMAIL, stop=[f"ask {PHONE}"])
    sent = dumps(mock.requests()[0]["body"])
    assert EMAIL not in sent and PHONE not in sent, sent
    assert "<EMAIL_1>" in sent and "<PHONE_1>" in sent, sent

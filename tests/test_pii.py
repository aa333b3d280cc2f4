"""PII: the provider sees placeholders (<EMAIL_1>, ...) instead of the originals, and the client
gets the originals back in the answer (restore), in every protocol, plain and streamed."""

from __future__ import annotations

import re

import pytest

from weir_clients import PROTOCOLS, chat, dumps

EMAIL, PHONE = "jane.doe@example.com", "+1 415 555 2671"
CARD, IBAN = "4111 1111 1111 1111", "GB29 NWBK 6016 1331 9268 19"
PROMPT = f"Write to {EMAIL} or call {PHONE}; card {CARD}, IBAN {IBAN}. Merci 🙂"
ORIGINALS = [EMAIL, PHONE, CARD, IBAN, "jane.doe", "4111111111111111", "GB29NWBK60161331926819",
             "555 2671", "1331 9268"]
# Assumption: placeholders are named after weir's detectors: email, phone, credit_card, iban.
PLACEHOLDERS = ["EMAIL", "PHONE", "CREDIT_CARD", "IBAN"]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("model,provider", [("mock-openai", "openai"), ("mock-anthropic", "anthropic")])
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

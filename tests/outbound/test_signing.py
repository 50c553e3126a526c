"""Standard Webhooks signing, checked by the specification's own library (the one a
receiver would use): what we sign, it verifies; what we change, it refuses."""

from __future__ import annotations

import time

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from tocsin.outbound import signing


def test_a_signed_body_verifies_with_standardwebhooks() -> None:
    secret = signing.new_secret()
    body = b'{"text":"disk full"}'
    now = int(time.time())
    hdrs = signing.headers(secret, "msg_1", now, body)
    assert Webhook(secret).verify(body, hdrs) == {"text": "disk full"}
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(b'{"text":"disk ok"}', hdrs)
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.new_secret()).verify(body, hdrs)


def test_secrets_are_whsec_base64_of_24_to_64_bytes() -> None:
    secret = signing.new_secret()
    assert secret.startswith("whsec_") and len(signing.parse_secret(secret)) == 32
    assert signing.normalize_secret(secret.removeprefix("whsec_")) == secret
    for bad in ("whsec_not base64!", "whsec_" + "QUJD", "", "whsec_" + "A" * 200):
        with pytest.raises(signing.BadSecret):
            signing.parse_secret(bad)


def test_without_a_secret_only_id_and_timestamp_are_sent() -> None:
    assert signing.headers(None, "m", 5, b"x") == {"webhook-id": "m", "webhook-timestamp": "5"}

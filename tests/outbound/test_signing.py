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
    hdrs = signing.sign_headers(secret, "msg_1", int(time.time()), body)
    assert Webhook(secret).verify(body, hdrs) == {"text": "disk full"}
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(b'{"text":"disk ok"}', hdrs)
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.new_secret()).verify(body, hdrs)


def test_secrets_are_whsec_base64_of_24_to_64_bytes() -> None:
    assert len(signing.secret_bytes(signing.new_secret())) == 32
    for bad in ("whsec_not base64!", "whsec_QUJD", "", "whsec_" + "A" * 200, "QUJD" * 10):
        with pytest.raises(ValueError):
            signing.secret_bytes(bad)

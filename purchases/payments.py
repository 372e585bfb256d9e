"""A simulated payment provider, idempotent like the real ones (Stripe, Adyen).

A charge is identified by its idempotency key (the job id): charging again
with the same key returns the first charge instead of taking money twice.
"""

from __future__ import annotations

import time
import uuid
from decimal import Decimal

from django.db import IntegrityError

from purchases.conf import purchases_setting
from purchases.models import PaymentCharge

# Documented test token: a purchase with this payment_token is declined.
DECLINE_TOKEN = "tok_decline"


class PaymentDeclined(Exception):
    """The payment provider declined the charge."""


def charge(*, amount: Decimal, currency: str, token: str, idempotency_key: str) -> PaymentCharge:
    """Charge ``amount`` once per ``idempotency_key``; raise ``PaymentDeclined`` if refused."""
    existing = PaymentCharge.objects.filter(idempotency_key=idempotency_key).first()
    if existing is not None:
        return existing
    # The provider's round trip; no database transaction is open here.
    time.sleep(float(purchases_setting("PAYMENT_DELAY")))
    if token == DECLINE_TOKEN:
        raise PaymentDeclined("The card was declined.")
    try:
        return PaymentCharge.objects.create(
            idempotency_key=idempotency_key,
            amount=amount,
            currency=currency,
            reference=f"ch_{uuid.uuid4().hex[:24]}",
        )
    except IntegrityError:
        return PaymentCharge.objects.get(idempotency_key=idempotency_key)


def refund(*, idempotency_key: str) -> PaymentCharge | None:
    """Refund the charge made with ``idempotency_key``, if any; refunding twice is a no-op."""
    charge = PaymentCharge.objects.filter(idempotency_key=idempotency_key).first()
    if charge is not None and not charge.refunded:
        PaymentCharge.objects.filter(pk=charge.pk).update(refunded=True)
        charge.refunded = True
    return charge

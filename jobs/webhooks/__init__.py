"""Completion webhooks: tell a user's HTTPS endpoint when a job ends.

- ``destinations``: which URLs the server may call (no internal services).
- ``signing``: the Standard Webhooks secret and signature.
- ``delivery``: a delivery per destination when a job ends, its attempts and retries.
- ``services``: a user's endpoint and secret, as the API changes them.
"""

"""shop: the small application the example suite tests.

A JSON API (``shop.api``) backed by SQLite (``shop.db``) that authenticates callers
against a token service (``shop.tokens``), charges a payment gateway (``shop.payments``)
and sends order confirmations to a mail sink (``shop.mail``). Every service is a stdlib
HTTP server that ``shop.http.serve`` runs in a thread on an ephemeral loopback port.
"""

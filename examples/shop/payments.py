"""A payment gateway stub: records charges, declines the well-known test card."""

from __future__ import annotations

import itertools
import threading
from typing import Any

from shop.http import Request, Response

__all__ = ["DECLINED_CARD", "PaymentGatewayApp"]

#: Charging this card number fails with 402, like the test cards of real gateways.
DECLINED_CARD = "4000000000000002"


class PaymentGatewayApp:
    """``POST /v1/charges`` charges a card; ``GET /v1/charges[/<id>]`` reads them back."""

    def __init__(self) -> None:
        self._charges: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def handle(self, request: Request) -> Response:
        """Route the ``/v1/charges`` endpoints."""
        match request.method, request.parts:
            case "POST", ["v1", "charges"]:
                return self._charge(request.body if isinstance(request.body, dict) else {})
            case "GET", ["v1", "charges"]:
                with self._lock:
                    return 200, list(self._charges.values())
            case "GET", ["v1", "charges", charge_id]:
                with self._lock:
                    charge = self._charges.get(charge_id)
                if charge is None:
                    return 404, {"error": f"no charge {charge_id!r}"}
                return 200, charge
            case _:
                return 404, {"error": f"no route for {request.method} {request.path}"}

    def _charge(self, body: dict[str, Any]) -> Response:
        amount = body.get("amount_cents")
        card = str(body.get("card", ""))
        if not isinstance(amount, int) or amount <= 0 or not card.isdigit():
            return 400, {"error": "amount_cents (> 0) and a card number are required"}
        if card == DECLINED_CARD:
            return 402, {"error": "card_declined"}
        with self._lock:
            charge_id = f"ch_{next(self._ids):06d}"
            charge = {
                "id": charge_id,
                "amount_cents": amount,
                "card_last4": card[-4:],
                "reference": body.get("reference"),
                "status": "succeeded",
            }
            self._charges[charge_id] = charge
        return 201, charge

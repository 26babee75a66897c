"""Configuration of the test stack the example suite starts (see ``conftest.py``)."""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass

from shop.http import JsonClient, Service

__all__ = ["LATENCY_VARIABLE", "Settings"]

#: Environment variable scaling the simulated latency: 1 is realistic, 0 turns it off.
LATENCY_VARIABLE = "SHOP_LATENCY_SCALE"


@dataclass(frozen=True, slots=True)
class Settings:
    """Settings shared by every setup step: credentials, timeouts and simulated latency."""

    latency_scale: float = 1.0
    client_id: str = "checkout-tests"
    client_secret: str = "not-a-real-secret"
    request_timeout_s: float = 5.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """Settings from the environment; raises ``ValueError`` for a bad value."""
        raw = environ.get(LATENCY_VARIABLE, "1")
        try:
            scale = float(raw)
        except ValueError:
            scale = math.nan
        if not 0 <= scale < math.inf:
            raise ValueError(
                f"{LATENCY_VARIABLE} must be a number >= 0 (1 = realistic, 0 = none), got {raw!r}"
            )
        return cls(latency_scale=scale)

    def client(self, service: Service) -> JsonClient:
        """An anonymous client of ``service`` with the stack's request timeout."""
        return JsonClient(service.url, timeout_s=self.request_timeout_s)

    def wait(self, seconds: float) -> None:
        """Block for ``seconds`` (scaled): the IO a real stack would wait on here."""
        time.sleep(seconds * self.latency_scale)

    async def wait_async(self, seconds: float) -> None:
        """``wait`` for coroutines."""
        await asyncio.sleep(seconds * self.latency_scale)

"""Gateway: terminates client connections, serves the lobby, fans committed events out."""

from __future__ import annotations

from roomwire.gateway.asgi import Gateway, GatewaySettings
from roomwire.gateway.auth import Identity, TokenSigner

__all__ = ["Gateway", "GatewaySettings", "Identity", "TokenSigner"]

"""Kerbside sync protocol v1: the rules as plain functions over plain data.

Nothing here imports Flask or touches a database session; `server` imports `sync`,
never the reverse. The Python reference client lives in `sync.client`.
"""

from sync.protocol import PROTOCOL_VERSION, SUPPORTED_PROTOCOLS, canonical_json, payload_hash

__all__ = ["PROTOCOL_VERSION", "SUPPORTED_PROTOCOLS", "canonical_json", "payload_hash"]

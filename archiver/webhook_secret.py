"""The Standard Webhooks secret format: ``whsec_`` and the base64 of random bytes.

Its own module so that whatever reads such a secret (the webhook sink, and the run
that starts the built-in simulator's receiver) reads it one way and refuses it in one
set of words. The simulator's receiver keeps its own reading, as any receiver would.
"""

from __future__ import annotations

import base64
import binascii

from archiver.errors import ConfigError

SECRET_PREFIX = "whsec_"
# The specification asks for at least 24 random bytes (192 bits).
MIN_SECRET_BYTES = 24
GENERATE_HINT = (
    "python3 -c \"import base64,os;print('whsec_'+base64.b64encode(os.urandom(24)).decode())\""
)


def signing_key(secret: str, *, env: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret (``whsec_<base64>``, or the base64 alone).

    ConfigError names the variable ``env`` that held it, never the value.
    """
    encoded = secret.strip().removeprefix(SECRET_PREFIX)
    try:
        # Strict: the reference libraries skip characters outside the alphabet, so a
        # secret with any would be read as a different key by the receiver.
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) < MIN_SECRET_BYTES:
        why = "is not base64" if not key else f"holds {len(key)} bytes"
        raise ConfigError(
            f"webhook secret in {env} {why}: a Standard Webhooks secret is `whsec_` followed by "
            f"the base64 of at least {MIN_SECRET_BYTES} random bytes; generate one with "
            f"{GENERATE_HINT}"
        )
    return key

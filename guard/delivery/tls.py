"""How this PC verifies the collector's TLS certificate: a configured CA bundle or the OS store."""

from __future__ import annotations

import ssl


class CaBundleError(Exception):
    """The configured CA bundle cannot be loaded; the message names the file and the cause."""


def ssl_context(ca_bundle: str | None) -> ssl.SSLContext:
    """TLS verification: the configured CA bundle, else the OS trust store (`truststore`)."""
    if ca_bundle:
        try:
            return ssl.create_default_context(cafile=ca_bundle)
        except (OSError, ssl.SSLError) as exc:
            raise CaBundleError(f"cannot load the CA bundle {ca_bundle}: {exc}") from exc
    import truststore

    return truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)

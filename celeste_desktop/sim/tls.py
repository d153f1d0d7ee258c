"""A throwaway certificate authority for the simulators (MSAL refuses http authorities)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True)
class SimTls:
    """Server-side TLS context for 127.0.0.1/localhost, and the CA file clients must trust."""

    server_context: ssl.SSLContext
    ca_bundle: Path

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_bundle))


def make_tls(directory: Path) -> SimTls:
    """Generate a CA and a server certificate; write the CA as ``directory/sim-ca.pem``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="CelesteOS simulated services")
    cert = ca.issue_cert("127.0.0.1", "localhost", "::1")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    ca_path = directory / "sim-ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    return SimTls(server_context=context, ca_bundle=ca_path)

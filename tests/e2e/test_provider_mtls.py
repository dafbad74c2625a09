"""mTLS to a provider, over real HTTPS on loopback: a department that requires a client
certificate answers the broker (which presents the exchange's) and nobody without one.
Certificates are made here with ``cryptography``: a CA, the department's server
certificate for 127.0.0.1 and the exchange's client certificate."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from tests.e2e.harness import (
    apply,
    free_port,
    key_of,
    seed_exchange,
    serve,
    settings_for,
    topic_code,
)

from exchange.app import build_context, create_app
from exchange.departments.app import create_departments_app
from exchange.departments.city import City

pytestmark = pytest.mark.e2e

CITY = City(2020, 2_000, 500)


@dataclass
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _issue(
    name: str,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool = False,
    usage: x509.ObjectIdentifier | None = None,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if usage == ExtendedKeyUsageOID.SERVER_AUTH:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    tmp = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "exchange test CA")])
    ca = _issue("exchange test CA", ca_name, ca_key, ca_key, ca=True)
    out = Pki(*(tmp / n for n in ("ca.pem", "srv.pem", "srv.key", "cli.pem", "cli.key")))
    out.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for cert_path, key_path, usage in (
        (out.server_cert, out.server_key, ExtendedKeyUsageOID.SERVER_AUTH),
        (out.client_cert, out.client_key, ExtendedKeyUsageOID.CLIENT_AUTH),
    ):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _issue(cert_path.stem, ca_name, ca_key, key, usage=usage)
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(_key_pem(key))
    return out


class _ThreadServer(uvicorn.Server):
    def install_signal_handlers(self) -> None:
        """Signals belong to the test process."""


@pytest.fixture(scope="module")
def tls_departments(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The mock departments over HTTPS, requiring a client certificate of the CA."""
    tmp = tmp_path_factory.mktemp("mtls")
    port = free_port()
    config = uvicorn.Config(
        create_departments_app(settings_for(f"sqlite:///{tmp}/unused.db")),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        ssl_certfile=str(pki.server_cert),
        ssl_keyfile=str(pki.server_key),
        ssl_ca_certs=str(pki.ca),
        ssl_cert_reqs=ssl.CERT_REQUIRED,
    )
    server = _ThreadServer(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        assert thread.is_alive(), "server did not start"
        time.sleep(0.02)
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


def test_the_broker_presents_its_certificate_and_nobody_else_gets_in(
    pki: Pki, tls_departments: str, tmp_path: Path
) -> None:
    settings = settings_for(f"sqlite:///{tmp_path}/exchange.db").model_copy(
        update={
            "upstream_client_cert": pki.client_cert,
            "upstream_client_key": pki.client_key,
            "upstream_ca": pki.ca,
        }
    )
    ctx = build_context(settings)
    app = create_app(settings, ctx=ctx)
    seed_exchange(ctx, f"{tls_departments}/departments")
    try:
        with serve(app) as url, httpx.Client(base_url=url, timeout=10) as http:
            code = topic_code(ctx, "household-registration")
            apply(http, "mzj", code, ["id_number", "name"])
            resp = http.post(
                f"/api/v1/exchange/{code}/query",
                json={"keys": [CITY.id_number_of(1)]},
                headers=key_of("mzj"),
            )
            assert resp.status_code == 200, resp.text
            assert resp.json()["records"] == [
                {"id_number": CITY.id_number_of(1), "name": CITY.person(1).name}
            ]
    finally:
        ctx.db.dispose()

    # Without a client certificate the TLS handshake itself is refused.
    record = f"{tls_departments}/departments/gaj/topics/household-registration/records/x"
    with pytest.raises(httpx.TransportError):
        httpx.get(record, verify=ssl.create_default_context(cafile=str(pki.ca)))
    # With one, the signature is still required: mTLS is on top, not instead.
    client_tls = ssl.create_default_context(cafile=str(pki.ca))
    client_tls.load_cert_chain(str(pki.client_cert), str(pki.client_key))
    unsigned = httpx.get(record, verify=client_tls)
    assert unsigned.status_code == 401
    assert unsigned.json()["error"]["code"] == "signature_required"

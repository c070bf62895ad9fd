"""Fixtures of the delivery tests: signing keys, their exported public keys, test certificates, receivers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from itertools import count
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from agent.delivery.signing import AlertSigner, PublicKeyFiles, load_or_create_signing_key, write_public_key_files
from tests.brokers import Pki, make_pki

if TYPE_CHECKING:
    from agent.agency.subscriber import AlertReceiver
    from tests.delivery.sample_alerts import ReceiverFactory


@pytest.fixture(scope="session")
def signing_key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("keys") / "site.pem"
    load_or_create_signing_key(path)
    return path


@pytest.fixture(scope="session")
def signer(signing_key_file: Path) -> AlertSigner:
    return AlertSigner.from_file(signing_key_file)


@pytest.fixture(scope="session")
def public_key_files(tmp_path_factory: pytest.TempPathFactory, signing_key_file: Path) -> PublicKeyFiles:
    """The site key's public half as `edge-agent keys export-public --pem` writes it (JWK, JWK Set, PEM)."""
    key = load_or_create_signing_key(signing_key_file)
    return write_public_key_files(key, tmp_path_factory.mktemp("public"), "site", pem=True)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"), clients=["site-a", "site-b", "agency-police"])


@pytest.fixture()
def receiver_factory(tmp_path: Path, public_key_files: PublicKeyFiles) -> Iterator[ReceiverFactory]:
    """`receiver_factory(url, topic_filter, **options)`: a started, subscribed `AlertReceiver`.

    It trusts the site key (its exported JWK file, in a registry file) for the site the
    filter names (`<prefix>/<site>/+/alerts/...`, or `site_id=`), is the recipient the
    filter's last level names (else `sample_alerts.RECIPIENT`, or `recipient=`), and
    remembers what it accepted in its own seen-store. The other options are
    `ConnectionOptions` fields (`ca_file`, `cert_file`, `key_file`, `username`,
    `password`, `client_id`, `session_expiry_s`, ...). Stopped at the end of the test.
    """
    # Imported here, so the signing and JWS tests collect whatever state the receiving side is in.
    from agent.agency.trust_registry_file import load_registry
    from tests.agency.receiving import receiving
    from tests.delivery.sample_alerts import alert_topic_parts

    numbers = count()
    with ExitStack() as stack:

        def start(
            url: str,
            topic_filter: str,
            *,
            site_id: str | None = None,
            recipient: str | None = None,
            client_id: str = "",
            session_expiry_s: int = 0,
            **connection: Any,
        ) -> AlertReceiver:
            prefix, filter_site, filter_recipient = alert_topic_parts(topic_filter)
            n = next(numbers)  # a registry and a seen-store of its own for each receiver
            registry_file = tmp_path / f"registry-{n}.yaml"
            registry_file.write_text(
                f"sites:\n  - site_id: {site_id or filter_site}\n    topic_prefix: {prefix}\n"
                f"    keys:\n      - jwk_file: {public_key_files.jwk}\n"
            )
            return stack.enter_context(
                receiving(
                    url,
                    load_registry(registry_file),
                    tmp_path / f"seen-{n}.sqlite",
                    recipient=recipient or filter_recipient,
                    topic_filters=(topic_filter,),
                    connection=connection,
                    client_id=client_id,
                    session_expiry_s=session_expiry_s,
                )
            )

        yield start

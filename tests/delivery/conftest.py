"""Fixtures of the delivery tests: signing keys, a trust directory, test certificates, envelopes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.agency.subscriber import AlertReceiver, ReceiverOptions, parse_broker_url
from agent.delivery.signing import AlertSigner, TrustStore, export_public_key, load_or_create_signing_key
from tests.brokers import Pki, make_pki


@pytest.fixture(scope="session")
def signing_key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("keys") / "site.pem"
    load_or_create_signing_key(path)
    return path


@pytest.fixture(scope="session")
def signer(signing_key_file: Path) -> AlertSigner:
    return AlertSigner.from_file(signing_key_file)


@pytest.fixture(scope="session")
def trust_dir(tmp_path_factory: pytest.TempPathFactory, signing_key_file: Path) -> Path:
    directory = tmp_path_factory.mktemp("trust")
    export_public_key(load_or_create_signing_key(signing_key_file), directory)
    return directory


@pytest.fixture(scope="session")
def trust(trust_dir: Path) -> TrustStore:
    return TrustStore.from_dir(trust_dir)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"), clients=["site-a", "site-b", "agency-police"])


@pytest.fixture()
def receiver_factory(trust: TrustStore) -> Iterator[object]:
    """`receiver_factory(url, topic_filter, **options)`: a started, subscribed AlertReceiver."""
    started: list[AlertReceiver] = []

    def start(url: str, topic_filter: str, **options: object) -> AlertReceiver:
        opts = ReceiverOptions(parse_broker_url(url), topic_filter, **options)  # type: ignore[arg-type]
        receiver = AlertReceiver(opts, trust).__enter__()
        started.append(receiver)
        receiver.wait_subscribed(5)
        return receiver

    yield start
    for receiver in started:
        receiver.__exit__(None, None, None)

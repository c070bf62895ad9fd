"""Fixtures of the integrator tools' tests: the walkway config in a scratch folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

EVAL_CONFIG = Path(__file__).resolve().parents[1] / "evaluation" / "vtest_rules.yaml"


@pytest.fixture(scope="session")
def walkway_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/evaluation/vtest_rules.yaml copied to a scratch folder, so keys it creates land there."""
    folder = tmp_path_factory.mktemp("walkway")
    target = folder / "site.yaml"
    shutil.copy(EVAL_CONFIG, target)
    return target

"""Fixtures for the privacy tests: a fully populated alert and an independent face detector.

The independent detector is two of OpenCV's Haar frontal-face cascades
(`default` and `alt2`, boxes pooled), which OpenCV 5 no longer ships. The
profile cascade was left out: on Megamind.avi it boxes a candle (frames
105-135), and it finds no face in darknet_person.jpg either. It runs in a subprocess from a throwaway
virtual environment with opencv-python-headless 4.x (the last line that
ships both `CascadeClassifier` and the cascade files), created once under
`.cache/haar-venv` and reused after; our own environment keeps its OpenCV 5.
"""

from __future__ import annotations

import subprocess
import types
import typing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest
from pydantic import BaseModel

from agent.alerts.schema import Alert
from tests.privacy.redaction_check import haar_face_boxes, haar_python

T0 = datetime(2026, 3, 1, 23, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def haar_faces() -> typing.Callable[[list[Path]], list[np.ndarray]]:
    """Face boxes (n, 4) `x1, y1, x2, y2` per image file, from the Haar cascades."""
    try:
        haar_python()
    except (OSError, subprocess.CalledProcessError) as err:
        pytest.fail(f"cannot build the Haar-cascade venv (opencv-python-headless 4.x from PyPI): {err}")
    return haar_face_boxes


# Fields whose bounds a generic value would miss.
_BOUNDED = {"agreement_digest": "sha256:" + "ab" * 32, "validation_level": 3}


def _sample(annotation: Any, name: str) -> Any:
    """A value for one field: distinctive strings so a leak is easy to spot."""
    if name in _BOUNDED:
        return _BOUNDED[name]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _sample(args[0], name)
    if origin is Literal:
        return typing.get_args(annotation)[0]
    if origin is list:
        return [_sample(typing.get_args(annotation)[0], name)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return sample_model(annotation)
    if annotation is datetime or "Datetime" in getattr(annotation, "__name__", ""):
        return T0
    if annotation is bool:
        return True
    if annotation is int:
        return 7
    if annotation is float:
        return 0.5
    if annotation is str:
        return f"value-of-{name}"
    raise TypeError(f"sample_model cannot fill field {name!r} of type {annotation!r}: extend _sample")


def sample_model(model: type[BaseModel]) -> Any:
    """An instance with every field set (optional ones too), walking the model's fields."""
    return model(**{name: _sample(info.annotation, name) for name, info in model.model_fields.items()})


@pytest.fixture()
def full_alert() -> Alert:
    alert = sample_model(Alert)
    # Realistic values where the policy reads them.
    detection = alert.detection.model_copy(
        update={
            "camera_id": "north-gate-cam",
            "site_id": "depot-7",
            "rule": "yard",
            "confidence": 0.9,
        }
    )
    info = alert.info.model_copy(
        update={
            "severity": "Severe",
            "headline": "Intrusion: 1 person in yard",  # as AlertBuilder writes it: no camera id in text
            "area": [
                alert.info.area[0].model_copy(
                    update={
                        "areaDesc": "Depot, yard",
                        "circle": "51.501234,-0.123456 0.1",
                    }
                )
            ],
        }
    )
    return alert.model_copy(update={"site_id": "depot-7", "detection": detection, "info": info})

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

import json
import subprocess
import sys
import types
import typing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest
from pydantic import BaseModel

from agent.alerts.schema import Alert
from tests.conftest import CACHE_DIR

HAAR_VENV = CACHE_DIR / "haar-venv"
T0 = datetime(2026, 3, 1, 23, 0, tzinfo=UTC)

_HAAR_SCRIPT = r"""
import json, sys
import cv2
cascades = [cv2.CascadeClassifier(cv2.data.haarcascades + name)
            for name in ("haarcascade_frontalface_default.xml", "haarcascade_frontalface_alt2.xml")]
out = []
for path in sys.argv[1:]:
    gray = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2GRAY)
    out.append([list(map(int, b)) for c in cascades for b in c.detectMultiScale(gray, 1.1, 5, minSize=(24, 24))])
print(json.dumps(out))
"""


def _haar_python() -> Path:
    python = HAAR_VENV / "bin" / "python"
    if python.exists():
        return python
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(HAAR_VENV)], check=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
         "opencv-python-headless>=4.8,<5", "numpy"],
        check=True, capture_output=True,
    )
    return python


@pytest.fixture(scope="session")
def haar_faces() -> typing.Callable[[list[Path]], list[np.ndarray]]:
    """Face boxes (n, 4) `x1, y1, x2, y2` per image file, from the Haar cascades."""
    try:
        python = _haar_python()
    except (OSError, subprocess.CalledProcessError) as err:
        pytest.fail(f"cannot build the Haar-cascade venv (opencv-python-headless 4.x from PyPI): {err}")

    def detect(paths: list[Path]) -> list[np.ndarray]:
        done = subprocess.run(
            [str(python), "-c", _HAAR_SCRIPT, *map(str, paths)], check=True, capture_output=True, text=True
        )
        out = []
        for boxes in json.loads(done.stdout):
            b = np.asarray(boxes, np.float32).reshape(-1, 4)
            b[:, 2:] += b[:, :2]
            out.append(b)
        return out

    return detect


def _sample(annotation: Any, name: str) -> Any:
    """A value for one field: distinctive strings so a leak is easy to spot."""
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
    detection = alert.detection.model_copy(update={
        "camera_id": "north-gate-cam", "site_id": "depot-7", "rule": "yard", "confidence": 0.9,
    })
    info = alert.info.model_copy(update={
        "severity": "Severe",
        "headline": "Intrusion: 1 person in yard",  # as AlertBuilder writes it: no camera id in text
        "area": [alert.info.area[0].model_copy(update={
            "areaDesc": "Depot, yard", "circle": "51.501234,-0.123456 0.1",
        })],
    })
    return alert.model_copy(update={"detection": detection, "info": info})

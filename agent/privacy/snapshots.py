"""The snapshot of an alert moment: filled faces, framed, scaled, JPEG; or withheld.

Faces are found on the whole original frame (small faces survive), filled
solid on a copy, and only then is the picture cropped, scaled and encoded,
so no step ever sees an unredacted pixel it could leak. If the face detector
cannot be loaded or fails, a policy that wants redacted snapshots gets a
`withheld` note instead of a picture: never an unredacted one. Snapshots
travel base64-encoded inside the signed message, so the signature covers the
picture and a recipient never holds a picture without its alert.
"""

from __future__ import annotations

__all__ = ["Snapshot", "SnapshotMaker"]

import base64
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import cv2
import numpy as np

from agent.config import SnapshotPolicy
from agent.errors import AgentError
from agent.logs import log_event
from agent.privacy.redaction import expand_boxes, face_fill_boxes, fill_boxes
from agent.values.alert_moment import AlertMoment

_log = logging.getLogger("agent.privacy.snapshots")
_CROP_MARGIN = 0.2  # context around the objects so the scene can be read


class FaceFinding(Protocol):
    """What snapshots need from a face detector."""

    def detect(self, image_bgr: np.ndarray) -> Any: ...


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A picture for one snapshot policy, or why there is none.

    Attributes:
        redaction: "faces-filled", "unredacted" or "withheld".
        jpeg: encoded bytes; empty when withheld.
        width_px, height_px: JPEG size.
        faces_filled: faces found and filled (0 when unredacted or withheld).
        persons_filled: person boxes filled.
        withheld_reason: why no picture is sent, else "".
    """

    redaction: str
    jpeg: bytes
    width_px: int
    height_px: int
    faces_filled: int
    persons_filled: int
    withheld_reason: str = ""

    def to_json(self) -> dict[str, Any]:
        """The `snapshot` object of a recipient's view."""
        if self.redaction == "withheld":
            return {"withheld": self.withheld_reason}
        return {
            "content_type": "image/jpeg",
            "data_base64": base64.b64encode(self.jpeg).decode("ascii"),
            "width_px": self.width_px,
            "height_px": self.height_px,
            "redaction": self.redaction,
            "faces_filled": self.faces_filled,
            "persons_filled": self.persons_filled,
        }


def _withheld(reason: str) -> Snapshot:
    return Snapshot("withheld", b"", 0, 0, 0, 0, reason)


class SnapshotMaker:
    """Makes the snapshots of one alert moment for every policy that wants one.

    Args:
        face_detector: builds the face detector on first use (once, under a
            lock, whichever thread needs it first); raising there marks it
            unavailable (redacted snapshots are then withheld, and the reason
            is logged once).
    """

    def __init__(self, face_detector: Callable[[], FaceFinding]) -> None:
        self._factory = face_detector
        self._detector: FaceFinding | None = None
        self._unavailable = ""
        # Delivery threads may ask for the first snapshot at once; the model loads once.
        self._load_lock = threading.Lock()

    def make_all(self, moment: AlertMoment, policies: Iterable[SnapshotPolicy]) -> dict[SnapshotPolicy, Snapshot]:
        """One snapshot per distinct policy; faces are detected at most once."""
        faces: np.ndarray | str | None = None
        out: dict[SnapshotPolicy, Snapshot] = {}
        for policy in policies:
            if policy in out or not policy.enabled:
                continue
            if policy.unredacted_snapshots_i_accept_personal_data:
                out[policy] = _encode(moment, moment.image_bgr, policy, "unredacted", 0, 0)
                continue
            if faces is None:
                faces = self._faces(moment.image_bgr)
            if isinstance(faces, str):
                out[policy] = _withheld(faces)
                continue
            out[policy] = self._redacted(moment, faces, policy)
        return out

    def _loaded(self) -> FaceFinding | str:
        """The face detector, loaded on first use (once, whichever thread asks first), or why not."""
        with self._load_lock:
            if self._detector is None and not self._unavailable:
                try:
                    self._detector = self._factory()
                except AgentError as err:
                    self._unavailable = f"face detector unavailable: {err}"
                    log_event(_log, "face_detector_unavailable", logging.ERROR, reason=str(err))
                except Exception as err:  # noqa: BLE001 - a model that cannot load withholds, never leaks
                    self._unavailable = "face detector unavailable: failed to load"
                    log_event(_log, "face_detector_unavailable", logging.ERROR, reason=f"{type(err).__name__}: {err}")
            return self._detector if self._detector is not None else self._unavailable

    def _faces(self, image_bgr: np.ndarray) -> np.ndarray | str:
        """Face boxes, or the reason they cannot be had."""
        detector = self._loaded()
        if isinstance(detector, str):
            return detector
        try:
            return np.asarray(detector.detect(image_bgr).box_xyxy_px, np.float32).reshape(-1, 4)
        except Exception as err:  # noqa: BLE001 - any failure must withhold, never leak
            log_event(_log, "face_detection_failed", logging.ERROR, error=type(err).__name__)
            return "face detection failed"

    def _redacted(self, moment: AlertMoment, faces: np.ndarray, policy: SnapshotPolicy) -> Snapshot:
        h, w = moment.image_bgr.shape[:2]
        boxes = face_fill_boxes(faces, policy.face_margin, (w, h))
        persons = 0
        if policy.fill_person_boxes:
            person_boxes = expand_boxes(moment.person_box_xyxy_px, 0.05, (w, h))
            boxes = np.concatenate([boxes, person_boxes])
            persons = len(person_boxes)
        filled = fill_boxes(moment.image_bgr, boxes)
        return _encode(moment, filled, policy, "faces-filled", len(faces), persons)


def _encode(
    moment: AlertMoment, image: np.ndarray, policy: SnapshotPolicy, redaction: str, faces: int, persons: int
) -> Snapshot:
    x1, y1, x2, y2 = _frame_region(moment, policy)
    crop = image[y1:y2, x1:x2]
    scale = min(1.0, policy.max_side_px / max(crop.shape[:2]))
    if scale < 1.0:
        crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    ok, jpeg = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, policy.jpeg_quality])
    if not ok:
        return _withheld("JPEG encoding failed")
    return Snapshot(redaction, jpeg.tobytes(), crop.shape[1], crop.shape[0], faces, persons)


def _frame_region(moment: AlertMoment, policy: SnapshotPolicy) -> tuple[int, int, int, int]:
    h, w = moment.image_bgr.shape[:2]
    objects = np.asarray(moment.object_box_xyxy_px, np.float32).reshape(-1, 4)
    if policy.framing == "frame" or len(objects) == 0:
        return 0, 0, w, h
    union = np.array([[objects[:, 0].min(), objects[:, 1].min(), objects[:, 2].max(), objects[:, 3].max()]])
    x1, y1, x2, y2 = expand_boxes(union, _CROP_MARGIN, (w, h))[0]
    if x2 - x1 < 2 or y2 - y1 < 2:
        return 0, 0, w, h
    return int(x1), int(y1), int(x2), int(y2)

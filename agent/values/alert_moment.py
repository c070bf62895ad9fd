"""The moment an alert was made: the frame and the boxes it counted.

It crosses from the camera thread to the delivery thread, where a snapshot
policy may picture it; nothing on either side modifies it.
"""

from __future__ import annotations

__all__ = ["AlertMoment"]

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class AlertMoment:
    """The frame an alert was made on, and what it counted.

    Attributes:
        image_bgr: (H, W, 3) uint8, the original frame; never modified.
        object_box_xyxy_px: (n, 4) boxes of the objects the alert counts (crop framing).
        person_box_xyxy_px: (m, 4) every person box in the frame (for `fill_person_boxes`).
    """

    image_bgr: np.ndarray
    object_box_xyxy_px: np.ndarray
    person_box_xyxy_px: np.ndarray

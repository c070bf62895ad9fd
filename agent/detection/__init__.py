"""Detection stage: ONNX detector models, their pre- and post-processing.

`ObjectDetector` is the entry point; the submodules hold the pieces
(`preprocess`, `onnx_session`, `decoding`, `adapters`, `box_ops`).
"""

from agent.detection.detector import DetectorOptions, ObjectDetector, StageTimings

__all__ = ["DetectorOptions", "ObjectDetector", "StageTimings"]

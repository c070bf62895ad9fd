"""The values that cross the camera pipeline's stages: frames, detections, tracks, rule events.

A leaf: nothing here imports the rest of the agent, so every stage can
depend on it without depending on another stage.
"""

"""Accuracy measurement against ground truth: detection AP, tracking metrics, alert events."""

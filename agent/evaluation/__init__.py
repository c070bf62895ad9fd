"""Accuracy measurement against ground truth (detection AP, and more as stages grow)."""

"""Offline accuracy evaluation (tracking metrics)."""

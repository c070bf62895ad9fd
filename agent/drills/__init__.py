"""Joint drills: scenarios sent as CAP `Exercise` alerts through the live delivery path, and their scorecard."""

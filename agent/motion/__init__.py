"""The motion gate: which frames (and where in them) anything moved."""

"""Privacy by default: what each recipient may see of an alert, and proof of what left.

Modules, one responsibility each:

- `fields`: the dotted field paths of the alert schema and the default allow-list.
- `view`: projects an alert onto a recipient's allow-list and coarsens its location.
- `pseudonyms`: keyed, per-recipient pseudonyms for camera and track ids.
- `policy`: `SharingPolicy`, a recipient's whole view of an alert (fields,
  pseudonyms, location, snapshot) and the policy version.
- `faces`: the CenterFace face detector (ONNX Runtime).
- `redaction`: solid fills over faces (and optionally whole persons).
- `snapshots`: the JPEG snapshot of the alert moment, redacted or withheld.
- `audit`: the append-only, hash-chained log of every message that leaves the box.

Nothing is imported here so that loading the config does not load ONNX Runtime.
"""

from __future__ import annotations

__all__: list[str] = []

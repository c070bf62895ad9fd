"""`SharingPolicy`: what each recipient sees of an alert.

For one alert and one recipient it: swaps camera and track ids for the
recipient's pseudonyms (in the id fields and in the free text that names
them), keeps only the fields on the recipient's allow-list, coarsens or drops
the site location, attaches the snapshot the recipient's policy allows (or a
note that it was withheld), and stamps what only this copy has: at top level
`recipient` (its name), `agreement` (its agreement id; with its terms'
`agreement_digest` where the site lists written agreements) and `expires`
(`sent` plus its `retention_s`, else its agreement's, else the site's default
message expiry), and a
`privacy` block with the policy version and the pseudonym key id. The result,
keys in schema order, is the JSON object that is signed and published (a
`PublishedAlert`); the same alert never leaves the box any other way.
"""

from __future__ import annotations

__all__ = ["PRIVACY_KEY", "SNAPSHOT_KEY", "SharingPolicy", "policy_version"]

import hashlib
import json
import logging
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from agent.alerts.fields import POLICY_ADDED
from agent.alerts.schema import Alert, PublishedAlert
from agent.alerts.times import utc_time
from agent.config import SEVERITY_ORDER, PoliciesConfig, RecipientPolicy, SnapshotPolicy
from agent.config.agreements import Agreement
from agent.logs import log_event
from agent.privacy.pseudonyms import PseudonymKey, load_or_create_pseudonym_key
from agent.privacy.snapshots import FaceFinding, Snapshot, SnapshotMaker
from agent.privacy.view import FieldSelection, coarsen_areas, project
from agent.values.alert_moment import AlertMoment

# Keys of the alert schema that only the policy sets (see `agent.alerts.fields.POLICY_ADDED`).
PRIVACY_KEY, SNAPSHOT_KEY = "privacy", "snapshot"
_SCHEMA_ORDER = {name: i for i, name in enumerate(PublishedAlert.model_fields)}

_log = logging.getLogger("agent.privacy")
_TRACK_KEY = re.compile(r"(^|_)track_ids?$")


def policy_version(policies: PoliciesConfig) -> str:
    """`p-` and 16 hex digits of SHA-256 over the canonical JSON of what decides a view.

    File locations are left out: moving the audit log or key file changes no view.
    """
    canonical = policies.model_dump(mode="json", exclude={"pseudonym_key_file", "audit_log"})
    canonical["face_detector"].pop("model_path", None)
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    return "p-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


class SharingPolicy:
    """Renders recipients' views of alerts.

    Args:
        policies: the site's recipients and their rules.
        site_id: goes into every pseudonym, so two sites never share one.
        key: the site's pseudonym key.
        default_expiry_s: lifetime of a message whose recipient sets no `retention_s`
            (the site's `mqtt.message_expiry_s`): `expires` is `sent` plus this.
        snapshots: makes snapshots; None means no recipient can get one.
    """

    def __init__(
        self,
        policies: PoliciesConfig,
        *,
        site_id: str,
        key: PseudonymKey,
        default_expiry_s: int,
        snapshots: SnapshotMaker | None = None,
    ) -> None:
        self.recipients: tuple[RecipientPolicy, ...] = tuple(policies.recipients)
        self.version = policy_version(policies)
        self.key_id = key.key_id
        self._key = key
        self._site_id = site_id
        self._default_expiry_s = default_expiry_s
        self._snapshots = snapshots
        self._selections = {r.name: FieldSelection.of(r.fields) for r in self.recipients}
        self._agreements = {r.name: policies.agreement_for(r) for r in self.recipients}
        for r in self.recipients:
            if r.snapshots.enabled and r.snapshots.unredacted_snapshots_i_accept_personal_data:
                log_event(
                    _log,
                    "personal_data_sharing_enabled",
                    logging.WARNING,
                    recipient=r.name,
                    what="unredacted snapshots (faces visible)",
                    policy_version=self.version,
                )

    @classmethod
    def from_config(
        cls,
        policies: PoliciesConfig,
        *,
        site_id: str,
        default_expiry_s: int,
        face_detector: Callable[[], FaceFinding] | None = None,
    ) -> SharingPolicy:
        """Build from config: load (or create) the key; the face detector loads on first snapshot."""
        if face_detector is None:

            def face_detector() -> FaceFinding:
                from agent.privacy.faces import CenterFaceDetector

                return CenterFaceDetector(policies.face_detector)

        return cls(
            policies,
            site_id=site_id,
            key=load_or_create_pseudonym_key(policies.pseudonym_key_file),
            default_expiry_s=default_expiry_s,
            snapshots=SnapshotMaker(face_detector),
        )

    def receives(self, recipient: RecipientPolicy, alert: Alert) -> bool:
        """Whether the recipient's rules and minimum severity let this alert through."""
        if SEVERITY_ORDER[alert.info.severity] < SEVERITY_ORDER[recipient.min_severity]:
            return False
        return "*" in recipient.rules or alert.detection.rule in recipient.rules

    def snapshots_for(
        self, moment: AlertMoment | None, recipients: list[RecipientPolicy]
    ) -> dict[SnapshotPolicy, Snapshot]:
        """The snapshots these recipients may get of `moment` (faces found once)."""
        wanted = [r.snapshots for r in recipients if r.snapshots.enabled]
        if moment is None or not wanted:
            return {}
        if self._snapshots is None:
            return {p: Snapshot("withheld", b"", 0, 0, 0, 0, "snapshots not configured") for p in wanted}
        try:
            return self._snapshots.make_all(moment, wanted)
        except Exception as err:  # noqa: BLE001 - a picture that cannot be made is withheld; the alert still goes
            log_event(_log, "snapshot_failed", logging.ERROR, error=f"{type(err).__name__}: {err}")
            return {p: Snapshot("withheld", b"", 0, 0, 0, 0, "snapshot failed") for p in wanted}

    def render(self, alert: Alert, recipient: RecipientPolicy, snapshot: Snapshot | None = None) -> dict[str, Any]:
        """The recipient's view of `alert`: a new JSON-ready dict, keys in schema order."""
        data = alert.model_dump(mode="json", exclude_none=True, exclude=set(POLICY_ADDED))
        data = self._pseudonymize(data, recipient)
        view = project(data, self._selections[recipient.name])
        coarsen_areas(view, mode=recipient.location, decimals=recipient.location_decimals)
        view["recipient"] = recipient.name
        view["agreement"] = recipient.agreement_id
        agreement = self.agreement(recipient)
        if agreement is not None:
            view["agreement_digest"] = agreement.digest
        # Milliseconds, cut (never rounded up): a copy never claims to live longer than its policy allows.
        expires = alert.sent + timedelta(seconds=self.lifetime_s(recipient))
        view["expires"] = utc_time(expires, precision="milliseconds", zulu=True)
        if snapshot is not None and recipient.snapshots.enabled:
            view[SNAPSHOT_KEY] = snapshot.to_json()
        view[PRIVACY_KEY] = {"policy_version": self.version, "pseudonym_key_id": self.key_id}
        # Schema order, so a person reading a payload finds the envelope first (unknown keys cannot occur).
        return dict(sorted(view.items(), key=lambda item: _SCHEMA_ORDER.get(item[0], len(_SCHEMA_ORDER))))

    def agreement(self, recipient: RecipientPolicy) -> Agreement | None:
        """The written agreement `recipient` receives under, if the site lists any."""
        return self._agreements.get(recipient.name)

    def lifetime_s(self, recipient: RecipientPolicy) -> int:
        """How long after `sent` a copy for `recipient` stays valid.

        Its `retention_s`, else its agreement's, else the site's default message expiry.
        """
        if recipient.retention_s is not None:
            return recipient.retention_s
        agreement = self.agreement(recipient)
        if agreement is not None and agreement.retention_s is not None:
            return agreement.retention_s
        return self._default_expiry_s

    def pseudonym(self, kind: str, value: str, recipient: RecipientPolicy) -> str:
        """The pseudonym this recipient sees for an id (`cam` for cameras, `trk` for tracks)."""
        return self._key.pseudonym(kind, value, group=recipient.linkage_group, site_id=self._site_id)

    def _pseudonymize(self, data: dict[str, Any], recipient: RecipientPolicy) -> dict[str, Any]:
        # The alert builder names the camera only in `detection.camera_id` (never in
        # free text), so swapping that one field hides the camera everywhere.
        out: dict[str, Any] = self._track_fields(data, recipient)
        detection = out.get("detection")
        if isinstance(detection, dict) and detection.get("camera_id"):
            camera = detection["camera_id"]
            out["detection"] = {**detection, "camera_id": self.pseudonym("cam", camera, recipient)}
        return out

    def _track_fields(self, value: Any, recipient: RecipientPolicy) -> Any:
        """Replace the values under any `*track_id(s)` key with track pseudonyms."""
        if isinstance(value, list):
            return [self._track_fields(v, recipient) for v in value]
        if not isinstance(value, dict):
            return value
        out: dict[str, Any] = {}
        for k, v in value.items():
            if _TRACK_KEY.search(k):
                ids = v if isinstance(v, list) else [v]
                hidden = [self.pseudonym("trk", str(i), recipient) for i in ids]
                out[k] = hidden if isinstance(v, list) else hidden[0]
            else:
                out[k] = self._track_fields(v, recipient)
        return out

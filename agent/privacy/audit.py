"""The audit log: every message that leaves the box, in a tamper-evident hash chain.

One JSON object per line. Each record carries the SHA-256 of the record
before it (`prev`) and its own hash (`hash`, over its canonical JSON without
`hash`), and a sequence number from 1. Editing a record breaks its hash,
removing or reordering one breaks the next record's `prev` or the sequence.
Cutting records off the end leaves a valid shorter chain, so each append
also rewrites a small `<log>.head` file with the last sequence number and
hash, which `verify` compares.

Appends take an exclusive `flock` on the log (several processes may
append), and are fsynced before `record` returns. A line torn by a power cut
(no final newline) is cut off before the next append, which notes the
number of bytes it removed.

Record kinds: a message that left the box has no `kind` (and is the only
record with a `message_id`, which `agent.delivery.reconcile` checks against
the outbox); it also keeps the sharing terms behind it (`Outgoing.terms`:
agreement and digest, CAP status, validation level, location precision,
fields shared, how it was released, any break-glass grant). `record_event`
appends the others, each with its `kind`: `status` (a recipient's signed
status, accepted), `status_rejected` (one that was not: forged, unknown key,
malformed), `escalation` (an alert sent on to another recipient because no
acknowledgement came in time), `withheld`, `held` and `released` (what an
agreement kept back, held for verification and let go), the break-glass
kinds and the drill kinds. The transparency report
(`agent.transparency`) counts them. An
`AuditObserver` may add fields to each sent-message record (its incident)
and hears of each record once it is on disk.
"""

from __future__ import annotations

__all__ = ["AuditIssue", "AuditLog", "AuditObserver", "AuditRecord", "read_records", "verify_log"]

import fcntl
import hashlib
import json
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from agent.errors import AgentError
from agent.logs import log_event

GENESIS = "0" * 64
_log = logging.getLogger("agent.privacy.audit")
_TAIL_READ = 65536


class Outgoing(Protocol):
    """What the log needs from an outgoing message (`agent.delivery.routing.OutgoingAlert`)."""

    @property
    def message_id(self) -> str: ...
    @property
    def recipient(self) -> str: ...
    @property
    def topic(self) -> str: ...
    @property
    def payload(self) -> bytes: ...
    @property
    def alert_id(self) -> str: ...
    @property
    def policy_version(self) -> str: ...
    @property
    def snapshot(self) -> str: ...
    @property
    def personal_data(self) -> bool: ...
    @property
    def terms(self) -> Mapping[str, Any]: ...


class AuditObserver(Protocol):
    """Told about sent-message records (`agent.delivery.feedback.FeedbackIntake`)."""

    def extra_fields(self, outgoing: Outgoing) -> Mapping[str, Any]:
        """More fields for the record of `outgoing` (e.g. its incident id); called before it is written."""
        ...

    def recorded(self, outgoing: Outgoing, record: Mapping[str, Any]) -> None:
        """`record` of `outgoing` is on disk."""
        ...


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One line of the log, parsed.

    Attributes:
        line: 1-based line number in the file.
        data: the record's fields, `hash` included.
    """

    line: int
    data: dict[str, Any]

    @property
    def ts(self) -> datetime | None:
        try:
            return datetime.fromisoformat(str(self.data.get("ts")))
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class AuditIssue:
    """The first thing wrong with a log.

    Attributes:
        line: 1-based line of the first bad record (0: the log as a whole).
        reason: what is wrong, in words.
    """

    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}" if self.line else self.reason


def _record_hash(fields: dict[str, Any]) -> str:
    body = {k: v for k, v in fields.items() if k != "hash"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class AuditLog:
    """Appends records to one log file.

    Args:
        path: the JSONL file; created with its folder when missing.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.head_path = self.path.with_name(self.path.name + ".head")
        self._observer: AuditObserver | None = None

    def observe(self, observer: AuditObserver | None) -> None:
        """Have `observer` annotate and hear of every sent-message record from now on (None: nobody)."""
        self._observer = observer

    def record(self, outgoing: Outgoing, *, ts: datetime | None = None, **extra: Any) -> dict[str, Any]:
        """Append one record for a message accepted for sending; returns it.

        Args:
            outgoing: the message (an `OutgoingAlert`).
            ts: when it was accepted; default now (UTC).
            extra: more JSON-ready fields to record (e.g. `outbox_id`).

        Raises:
            AgentError: the log cannot be written.
        """
        fields: dict[str, Any] = {
            "ts": (ts or datetime.now(UTC)).isoformat(timespec="microseconds"),
            "recipient": outgoing.recipient,
            "topic": outgoing.topic,
            "alert_id": outgoing.alert_id,
            "message_id": outgoing.message_id,
            "payload_sha256": hashlib.sha256(outgoing.payload).hexdigest(),
            "payload_bytes": len(outgoing.payload),
            "policy_version": outgoing.policy_version,
            "snapshot": outgoing.snapshot,
            "personal_data": outgoing.personal_data,
            **outgoing.terms,
        }
        observer = self._observer
        if observer is not None:
            try:
                fields.update({k: v for k, v in observer.extra_fields(outgoing).items() if k not in fields})
            except Exception as err:  # noqa: BLE001 - an annotation never keeps a sent message out of the log
                log_event(_log, "audit_observer_failed", logging.ERROR, error=f"{type(err).__name__}: {err}")
        fields.update(extra)
        record = self._write(fields)
        if observer is not None:
            try:
                observer.recorded(outgoing, record)
            except Exception as err:  # noqa: BLE001 - the record is on disk whatever the observer does
                log_event(_log, "audit_observer_failed", logging.ERROR, error=f"{type(err).__name__}: {err}")
        return record

    def record_event(self, kind: str, *, ts: datetime | None = None, **fields: Any) -> dict[str, Any]:
        """Append one record of another kind (`status`, `status_rejected`, `escalation`); returns it.

        Raises:
            AgentError: the log cannot be written, or `fields` names `message_id` (kept for sent messages).
        """
        if "message_id" in fields:
            raise AgentError("message_id belongs to sent-message records only")
        when = (ts or datetime.now(UTC)).isoformat(timespec="microseconds")
        return self._write({"ts": when, "kind": kind, **fields})

    def _write(self, fields: dict[str, Any]) -> dict[str, Any]:
        try:
            return self._append(fields)
        except OSError as err:
            raise AgentError(f"cannot write audit log {self.path}: {err.strerror or err}") from None

    def _append(self, fields: dict[str, Any]) -> dict[str, Any]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o640)
        with os.fdopen(fd, "r+b") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)  # released when the file closes
            last, torn = _last_record(f)
            if torn:
                f.truncate(f.seek(0, os.SEEK_END) - torn)
                fields["repaired_torn_tail_bytes"] = torn
                log_event(_log, "audit_torn_tail_removed", logging.WARNING, path=self.path, bytes=torn)
            record = {"seq": int(last.get("seq", 0)) + 1, **fields, "prev": last.get("hash", GENESIS)}
            record["hash"] = _record_hash(record)
            f.write(json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() + b"\n")
            f.flush()
            os.fsync(f.fileno())
            self._write_head(record)
        return record

    def _write_head(self, record: dict[str, Any]) -> None:
        tmp = self.head_path.with_name(self.head_path.name + ".tmp")
        with open(tmp, "w", encoding="ascii") as h:
            json.dump({"seq": record["seq"], "hash": record["hash"]}, h)
            h.flush()
            os.fsync(h.fileno())
        os.replace(tmp, self.head_path)


def _last_record(f: Any) -> tuple[dict[str, Any], int]:
    """The last complete record of an open log, and the length of a torn tail after it."""
    end = f.seek(0, os.SEEK_END)
    if end == 0:
        return {}, 0
    start = max(0, end - _TAIL_READ)
    f.seek(start)
    tail = f.read()
    while b"\n" not in tail[:-1] and start > 0:  # one record longer than the window: read more
        start = max(0, start - _TAIL_READ)
        f.seek(start)
        tail = f.read()
    torn = 0
    if not tail.endswith(b"\n"):
        cut = tail.rfind(b"\n") + 1
        torn, tail = len(tail) - cut, tail[:cut]
    lines = tail.rstrip(b"\n").split(b"\n")
    if not lines or not lines[-1]:
        return {}, torn
    try:
        return dict(json.loads(lines[-1])), torn
    except json.JSONDecodeError:
        raise AgentError("the audit log's last record is not JSON; run: edge-agent audit verify") from None


def read_records(path: Path) -> Iterator[AuditRecord]:
    """Every line of the log, parsed (a line that is not JSON yields `data={}`)."""
    try:
        with open(path, "rb") as f:
            for number, raw in enumerate(f, start=1):
                try:
                    data = json.loads(raw)
                except json.JSONDecodeError:
                    data = None
                yield AuditRecord(
                    number, data if isinstance(data, dict) else {"_unreadable": raw[:200].decode(errors="replace")}
                )
    except OSError as err:
        raise AgentError(f"cannot read audit log {path}: {err.strerror or err}") from None


def verify_log(path: Path) -> tuple[int, AuditIssue | None]:
    """Check the chain; returns (records checked, first issue or None)."""
    prev, count = GENESIS, 0
    for rec in read_records(path):
        issue = _check_record(rec, prev, count + 1)
        if issue is not None:
            return count, issue
        prev, count = rec.data["hash"], count + 1
    head_path = path.with_name(path.name + ".head")
    if head_path.exists():
        try:
            head = json.loads(head_path.read_text(encoding="ascii"))
        except (OSError, json.JSONDecodeError):
            return count, AuditIssue(0, f"{head_path.name} is unreadable")
        if head.get("seq") != count or head.get("hash") != prev:
            return count, AuditIssue(
                0,
                f"log ends at record {count} but {head_path.name} says {head.get('seq')}: "
                "records were removed from the end",
            )
    return count, None


def _check_record(rec: AuditRecord, prev: str, seq: int) -> AuditIssue | None:
    data = rec.data
    if "_unreadable" in data:
        return AuditIssue(rec.line, "not a JSON record (torn or edited)")
    if data.get("hash") != _record_hash(data):
        return AuditIssue(rec.line, f"record {data.get('seq')} was edited (its hash does not match its content)")
    if data.get("prev") != prev:
        return AuditIssue(
            rec.line, f"record {data.get('seq')} does not follow the record before it (removed or reordered)"
        )
    if data.get("seq") != seq:
        return AuditIssue(rec.line, f"record has sequence {data.get('seq')}, expected {seq} (removed or reordered)")
    return None

"""The `runtime` section: state file, stats, metrics, compiled-code cache, detector sharing."""

from __future__ import annotations

__all__ = ["MetricsConfig", "RuntimeConfig"]

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from agent.config.limits import MIN_STATS_INTERVAL_S
from agent.config.model import ConfigModel


class MetricsConfig(ConfigModel):
    enabled: bool = Field(default=False, description="serve Prometheus metrics over HTTP")
    host: str = Field(
        default="127.0.0.1",
        min_length=1,
        description="address the metrics endpoint binds to; loopback unless a scraper needs it remotely",
    )
    port: int = Field(default=9108, ge=1, le=65535, description="TCP port of the metrics endpoint")


class RuntimeConfig(ConfigModel):
    """How the agent runs as a service: its state file, stats, metrics and compiled-code cache."""

    state_dir: Path = Field(
        default=Path("var/run"),
        description="folder of the state file `edge-agent status` reads (systemd: /run/edge-agent)",
    )
    state_interval_s: float = Field(default=2.0, ge=0.2, le=60, description="how often the state file is rewritten")
    stats_interval_s: float = Field(
        default=30.0,
        ge=0,
        le=3600,
        description="how often stats go to <prefix>/<site>/stats; 0: never, else at least 1",
    )
    metrics: MetricsConfig = Field(default_factory=MetricsConfig, description="Prometheus endpoint")
    numba_cache_dir: Path | None = Field(
        default=None,
        description=(
            "where compiled kernels are cached (NUMBA_CACHE_DIR, when set, wins); default: Numba's own choice"
        ),
    )
    detector_sharing: Literal["shared", "per_camera"] = Field(
        default="shared",
        description=(
            "shared: one ONNX session for every camera, used in turn (least memory); "
            "per_camera: one session per camera, run in parallel"
        ),
    )
    max_cpu_fraction: float = Field(
        default=0.9,
        gt=0,
        le=1,
        description="share of the box's CPU the agent may use before it lowers every camera's rate alike",
    )
    stall_timeout_s: float = Field(
        default=30.0,
        ge=2,
        le=3600,
        description="a camera loop silent this long makes the agent unhealthy (no systemd watchdog ping)",
    )
    camera_restart_max_s: float = Field(
        default=60.0, ge=1, le=3600, description="longest wait before a failed camera is started again"
    )

    @field_validator("stats_interval_s")
    @classmethod
    def _stats_interval_kept(cls, value: float) -> float:
        if 0 < value < MIN_STATS_INTERVAL_S:
            raise ValueError(
                f"must be 0 (never) or at least {MIN_STATS_INTERVAL_S:g} s: stats are sampled once a second"
            )
        return value

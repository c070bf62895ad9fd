"""The running process: one camera's pipeline, camera workers, scheduler, service, health, stats."""

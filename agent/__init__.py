"""Edge video-analytics agent.

Reads a site's cameras, detects and tracks people and vehicles, turns what
they do into alerts and publishes redacted, signed alert metadata over MQTT.
The stages and the values that pass between them are listed in README.md.
"""

from agent.errors import AgentError, ConfigError, ModelError, PublishRejected, SourceError

__all__ = ["AgentError", "ConfigError", "ModelError", "PublishRejected", "SourceError", "__version__"]

__version__ = "0.1.0"

"""Settings: every ``MQKIT_*`` environment variable, read when called.

Precedence is argument > environment > default. Nothing is read at import time, so a
notebook or a test can change ``os.environ`` and the next call sees it.

Example:
    >>> settings = Settings.from_env(backend="process")
    >>> settings.backend
    'process'
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from mqkit.exceptions import ConfigError

BACKENDS = ("auto", "external", "docker", "process")
DOCKER_NETWORKS = ("bridge", "host")

#: Official images, pinned to exact tags (never ``latest``), of the newest line the tests run:
#: the Docker stand-ins of Debian sid hold RabbitMQ 4.3.6 and Mosquitto 2.1.2
#: (``docker/standin/build.sh``). Mosquitto 2.1's official images are Alpine-based and tagged
#: ``-alpine`` only (docker-library's ``library/eclipse-mosquitto``: ``2.1.2-alpine``).
DEFAULT_RABBITMQ_IMAGE = "rabbitmq:4.3.6-management"
DEFAULT_MOSQUITTO_IMAGE = "eclipse-mosquitto:2.1.2-alpine"


@dataclass(frozen=True)
class Variable:
    """One ``MQKIT_*`` variable: its name, default and meaning (the README table)."""

    name: str
    default: str
    help: str


VARIABLES: tuple[Variable, ...] = (
    Variable("MQKIT_BACKEND", "auto", "auto, external, docker or process"),
    Variable("MQKIT_STATE_DIR", "$XDG_STATE_HOME/mqkit or ~/.local/state/mqkit",
             "where mqkit keeps credentials, pid files, broker data and logs"),
    Variable("MQKIT_STARTUP_TIMEOUT", "60", "seconds to wait for both brokers to be ready"),
    Variable("MQKIT_AMQP_URL", "", "external RabbitMQ, e.g. amqp://user:pass@host:5672/vhost; "
             "several URLs separated by commas are tried in turn"),
    Variable("MQKIT_MQTT_URL", "", "external Mosquitto, e.g. mqtt://user:pass@host:1883"),
    Variable("MQKIT_MANAGEMENT_URL", "",
             "external RabbitMQ management API, e.g. http://user:pass@host:15672"),
    Variable("MQKIT_CLASSROOM_URL", "",
             "a student's card: the classroom broker's progress vhost, e.g. "
             "amqp://student-ann:pass@host:5672/student%3Aprogress; self-checks publish "
             "their verdicts there for the instructor's progress board"),
    Variable("MQKIT_RABBITMQ_IMAGE", DEFAULT_RABBITMQ_IMAGE, "Docker image for RabbitMQ"),
    Variable("MQKIT_MOSQUITTO_IMAGE", DEFAULT_MOSQUITTO_IMAGE, "Docker image for Mosquitto"),
    Variable("MQKIT_DOCKER_NETWORK", "bridge",
             "bridge (ports published on 127.0.0.1) or host (mqkit picks free loopback ports)"),
    Variable("MQKIT_RABBITMQ_SERVER", "/usr/lib/rabbitmq/bin/rabbitmq-server",
             "rabbitmq-server script for the process backend"),
    Variable("MQKIT_MOSQUITTO_BINARY", "mosquitto", "mosquitto binary for the process backend"),
    Variable("MQKIT_AMQP_PORT", "0", "AMQP port of a started broker; 0 picks a free one"),
    Variable("MQKIT_MQTT_PORT", "0", "MQTT port of a started broker; 0 picks a free one"),
    Variable("MQKIT_MANAGEMENT_PORT", "0", "management API port; 0 picks a free one"),
    Variable("MQKIT_RABBITMQ_MEMORY", "512MiB",
             "RabbitMQ memory high watermark for started brokers (Binder has 1-2 GB)"),
    Variable("MQKIT_CA_FILE", "",
             "a CA certificate (PEM) that amqps://, mqtts:// and https:// brokers are verified "
             "against; unset: the system's CAs"),
    Variable("MQKIT_TLS_CERT_FILE", "",
             "certificate (PEM) for TLS listeners of started brokers (with the key and ports "
             "below), besides their plain ones"),
    Variable("MQKIT_TLS_KEY_FILE", "", "the private key (PEM) of MQKIT_TLS_CERT_FILE"),
    Variable("MQKIT_AMQPS_PORT", "0",
             "AMQP over TLS port of a started RabbitMQ; 0: no TLS listener"),
    Variable("MQKIT_MQTTS_PORT", "0", "MQTT over TLS port of a started Mosquitto; 0: none"),
)


def _default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(Path.home(), ".local", "state")
    return Path(base) / "mqkit"


def _port(name: str, value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise ConfigError(f"{name}={value!r} is not a port number.",
                          hint="Use 1-65535, or 0 to let mqkit pick a free port.")
    return port


@dataclass(frozen=True)
class Settings:
    """Resolved mqkit settings. Build with :meth:`Settings.from_env`."""

    backend: str = "auto"
    state_dir: Path = field(default_factory=_default_state_dir)
    startup_timeout: float = 60.0
    amqp_url: str = ""
    mqtt_url: str = ""
    management_url: str = ""
    classroom_url: str = ""
    rabbitmq_image: str = DEFAULT_RABBITMQ_IMAGE
    mosquitto_image: str = DEFAULT_MOSQUITTO_IMAGE
    docker_network: str = "bridge"
    rabbitmq_server: str = "/usr/lib/rabbitmq/bin/rabbitmq-server"
    mosquitto_binary: str = "mosquitto"
    amqp_port: int = 0
    mqtt_port: int = 0
    management_port: int = 0
    rabbitmq_memory: str = "512MiB"
    ca_file: str = ""
    tls_cert_file: str = ""
    tls_key_file: str = ""
    amqps_port: int = 0
    mqtts_port: int = 0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read every ``MQKIT_*`` variable now; keyword arguments win over the environment.

        Args:
            env: the environment to read (``os.environ`` when omitted).
            **overrides: field values that take precedence; ``None`` means "not given".

        Raises:
            ConfigError: a value is invalid (unknown backend, bad number, ...).
        """
        env = os.environ if env is None else env
        known = {f.name for f in fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise ConfigError(f"Unknown setting(s): {', '.join(sorted(unknown))}.",
                              hint=f"Known settings: {', '.join(sorted(known))}.")
        raw: dict[str, Any] = {}
        for name in known:
            value = overrides.get(name)
            if value is None:
                value = env.get(f"MQKIT_{name.upper()}") or None
            if value is not None:
                raw[name] = value
        return cls._validated(raw)

    @classmethod
    def _validated(cls, raw: dict[str, Any]) -> Settings:
        values: dict[str, Any] = dict(raw)
        backend = str(values.get("backend", "auto")).strip().lower()
        if backend not in BACKENDS:
            raise ConfigError(f"Unknown backend {backend!r} (from --backend or MQKIT_BACKEND).",
                              hint=f"Choose one of: {', '.join(BACKENDS)}.")
        values["backend"] = backend
        network = str(values.get("docker_network", "bridge")).strip().lower()
        if network not in DOCKER_NETWORKS:
            raise ConfigError(f"MQKIT_DOCKER_NETWORK={network!r} is not supported.",
                              hint="Use 'bridge' (the default) or 'host'.")
        values["docker_network"] = network
        if "state_dir" in values:
            values["state_dir"] = Path(values["state_dir"]).expanduser()
        if "startup_timeout" in values:
            try:
                timeout = float(values["startup_timeout"])
            except ValueError:
                timeout = -1.0
            if timeout <= 0:
                raise ConfigError(
                    f"MQKIT_STARTUP_TIMEOUT={values['startup_timeout']!r} is not a positive "
                    "number of seconds.", hint="For example MQKIT_STARTUP_TIMEOUT=90.")
            values["startup_timeout"] = timeout
        if "rabbitmq_memory" in values:
            memory = str(values["rabbitmq_memory"]).strip()
            # Only what every tested line reads alike (seen on 3.10.8, 4.0.5, 4.3.6): whole
            # bytes, MB, MiB, GB, GiB. Elsewhere they part: 4.3.6 exits at boot on "512 MiB",
            # "100B" and "524288KiB", where 3.10.8 silently takes 40% of the host's memory
            # (as it does for "0.5GB"); "512M" is 2^20 bytes to 3.10.8, 10^6 to 4.3.6.
            if not re.fullmatch(r"[1-9]\d*(MB|MiB|GB|GiB)?", memory):
                raise ConfigError(
                    f"MQKIT_RABBITMQ_MEMORY={memory!r} is not an amount of memory that every "
                    "tested RabbitMQ reads alike.",
                    hint="Use a whole number of bytes, MB, MiB, GB or GiB without a space, "
                         "such as 512MiB or 1GB.")
            values["rabbitmq_memory"] = memory
        for name in ("amqp_port", "mqtt_port", "management_port", "amqps_port", "mqtts_port"):
            if name in values:
                values[name] = _port(f"MQKIT_{name.upper()}", str(values[name]))
        for name in ("ca_file", "tls_cert_file", "tls_key_file"):
            if name in values:
                path = Path(str(values[name])).expanduser()
                if not path.is_file():
                    raise ConfigError(f"MQKIT_{name.upper()}={values[name]!r}: no such file.",
                                      hint="Give the path of a PEM file that exists here.")
                values[name] = str(path.absolute())
        if bool(values.get("tls_cert_file")) != bool(values.get("tls_key_file")):
            raise ConfigError("MQKIT_TLS_CERT_FILE and MQKIT_TLS_KEY_FILE go together: one is "
                              "set without the other.",
                              hint="Set both (the certificate and its key), or neither.")
        return cls(**values)

    @property
    def has_external(self) -> bool:
        """True when an external broker is configured (``MQKIT_AMQP_URL`` is set)."""
        return bool(self.amqp_url)

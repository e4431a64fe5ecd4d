"""RabbitMQ and Mosquitto as data: what each needs, whichever backend runs it.

The config templates live in the repository's ``docker/`` folder (shipped inside the wheel as
``mqkit/_docker``), so the files a reader finds there are exactly what mqkit mounts or writes.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from pathlib import Path
from string import Template

import mqkit


@dataclass(frozen=True)
class BrokerSpec:
    """One broker: its names, ports, config template and where things go in its image.

    Attributes:
        name: ``rabbitmq`` or ``mosquitto`` (used in labels, file names, CLI arguments).
        title: the name people use.
        port_names: ports a started broker needs; ``0`` values are picked free.
        template: config template, relative to ``docker/``.
        config_path: where the rendered config goes inside the official image.
        image_setting: the :class:`~mqkit.config.Settings` field naming the image.
        binary_setting: the :class:`~mqkit.config.Settings` field naming the binary.
    """

    name: str
    title: str
    port_names: tuple[str, ...]
    template: str
    config_path: str
    image_setting: str
    binary_setting: str


RABBITMQ = BrokerSpec(
    name="rabbitmq",
    title="RabbitMQ",
    # dist and epmd are Erlang's own ports: a second node on one host needs its own.
    port_names=("amqp", "management", "dist", "epmd"),
    template="rabbitmq/rabbitmq.conf.template",
    config_path="/etc/rabbitmq/rabbitmq.conf",
    image_setting="rabbitmq_image",
    binary_setting="rabbitmq_server",
)

MOSQUITTO = BrokerSpec(
    name="mosquitto",
    title="Mosquitto",
    port_names=("mqtt",),
    template="mosquitto/mosquitto.conf.template",
    config_path="/mosquitto/config/mosquitto.conf",
    image_setting="mosquitto_image",
    binary_setting="mosquitto_binary",
)

SPECS: dict[str, BrokerSpec] = {spec.name: spec for spec in (RABBITMQ, MOSQUITTO)}

#: The user name of brokers mqkit starts; the password is random per start.
USERNAME = "mqkit"

#: Erlang flags that keep distribution on loopback (it listens on all interfaces otherwise).
ERL_LOOPBACK_ARGS = "-kernel inet_dist_use_interface {127,0,0,1}"


def new_password() -> str:
    """A fresh random password: 192 bits, URL-safe."""
    return secrets.token_urlsafe(24)


def docker_dir() -> Path:
    """The ``docker/`` folder: in a source checkout, or shipped in the wheel."""
    package = Path(mqkit.__file__).resolve().parent
    for candidate in (package.parent / "docker", package / "_docker"):
        if (candidate / RABBITMQ.template).is_file():
            return candidate
    raise FileNotFoundError(f"mqkit's docker/ folder is missing next to {package}")


def render(template: str, **values: object) -> str:
    """Fill a template from ``docker/`` (``$name`` placeholders); unknown ones are an error."""
    text = (docker_dir() / template).read_text()
    values.setdefault("extra", "")
    return Template(text).substitute({key: str(value) for key, value in values.items()})


def rabbitmq_extra_config(username: str | None = None, password: str | None = None) -> str:
    """Lines that create the initial user through the config file (process backend)."""
    if username is None:
        return ""
    return f"default_user = {username}\ndefault_pass = {password}\n"


def mosquitto_password_line(username: str, password: str, iterations: int = 101) -> str:
    """One line of a Mosquitto 2 password file, as ``mosquitto_passwd`` writes it.

    The ``$7$`` format is PBKDF2-SHA512 with a 12-byte salt; computing it here means the
    docker backend needs no Mosquitto tools on the host.
    """
    salt = secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, 64)
    encode = base64.b64encode
    return f"{username}:$7${iterations}${encode(salt).decode()}${encode(digest).decode()}\n"

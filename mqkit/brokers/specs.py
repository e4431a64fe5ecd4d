"""RabbitMQ and Mosquitto as data: everything a backend needs to run one, in one record each.

A :class:`BrokerSpec` carries a broker's ports (and which settings fix them), its readiness
probes, its config files (rendered from the templates in the repository's ``docker/`` folder,
shipped inside the wheel as ``mqkit/_docker``), the commands and environment of its processes,
and its container settings. The backends read these records; none of them names a broker.

Example:
    >>> [port.name for port in RABBITMQ.ports]
    ['amqp', 'management', 'dist', 'epmd']
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mqkit.brokers.state import BrokerState
    from mqkit.config import Settings

#: The user name of brokers mqkit starts; the password is random per start.
USERNAME = "mqkit"

#: Erlang flags that keep distribution on loopback (it listens on all interfaces otherwise).
ERL_LOOPBACK_ARGS = "-kernel inet_dist_use_interface {127,0,0,1}"

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Port:
    """One TCP port a broker listens on.

    Attributes:
        name: ``amqp``, ``management``, ``mqtt``, or Erlang's ``dist`` and ``epmd``.
        scheme: the URL scheme clients use on it (``None`` for Erlang's own ports).
        setting: the :class:`~mqkit.config.Settings` field that fixes it (``None``: always
            picked free).
        container: where the official image listens inside its own network namespace;
            ``None`` for ports that exist only when the broker shares the host's network.
    """

    name: str
    scheme: str | None = None
    setting: str | None = None
    container: int | None = None


@dataclass(frozen=True)
class Command:
    """One process of a broker run by the process backend.

    Attributes:
        name: its name in the state record (``rabbitmq``, ``epmd``, ``mosquitto``).
        argv: the command line.
        env: variables added to the environment.
        log: its stdout/stderr file, relative to the broker's folder.
        marker: a string in its command line that proves a recorded pid is still ours.
        listens: a port name to wait for before the next command starts (epmd).
    """

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    log: str = "stdout.log"
    marker: str = ""
    listens: str | None = None


@dataclass(frozen=True)
class Container:
    """How the docker backend runs a broker from its image.

    Attributes:
        env: container environment.
        mounts: host path (relative to the broker's folder) -> path inside the container;
            mounted read-only.
        copies: host file (relative to the broker's folder) -> ``(path inside the container,
            user)``: copied in before the container starts, owned by that user of the image,
            mode 0600 (Mosquitto 2.0.16 and later warn on every start about a password file
            that is world-readable or owned by another user; seen on 2.1.2).
    """

    env: dict[str, str] = field(default_factory=dict)
    mounts: dict[str, str] = field(default_factory=dict)
    copies: dict[str, tuple[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Launch:
    """What one start of a broker needs to know (the same for every backend).

    Attributes:
        state: the state record: credentials, ports, node name.
        folder: the broker's folder in the state directory.
        settings: mqkit's settings.
        in_container: the broker runs in a container (config paths are mount points).
        bind: the address to listen on.
        ports: the ports the broker itself listens on (inside its network namespace).
    """

    state: BrokerState
    folder: Path
    settings: Settings
    in_container: bool
    bind: str
    ports: dict[str, int]


@dataclass(frozen=True)
class BrokerSpec:
    """One broker, as data.

    Attributes:
        name: ``rabbitmq`` or ``mosquitto`` (labels, file names, CLI arguments).
        title: the name people use.
        ports: the ports it listens on.
        probes: names of the ports whose probe must pass before it counts as ready, in order.
        binaries: executables the process backend needs (name -> settings field or ``None``).
        image_setting: the settings field naming its Docker image.
        files: its config files (relative path -> text) for one launch.
        commands: the processes that make it up, in start order (the last is the broker).
        container: its container settings.
        log_files: its log files, relative to its folder, newest information first.
        dirs: folders the process backend creates in its folder before the first start.
        watched: probes whose port is watched with bare TCP connects while the broker boots,
            and probed once it opens: cheaper than probing, so it can be done often. Only
            where a bare connect leaves no line in the broker's log (Mosquitto logs each).
        check_image: raises :class:`~mqkit.exceptions.ConfigError` for an image the docker
            backend cannot use (``None``: any image).
    """

    name: str
    title: str
    ports: tuple[Port, ...]
    probes: tuple[str, ...]
    binaries: dict[str, str | None]
    image_setting: str
    files: Callable[[Launch], dict[str, str]]
    commands: Callable[[Launch, dict[str, str]], list[Command]]
    container: Callable[[Launch], Container]
    log_files: Callable[[BrokerState], list[str]]
    dirs: tuple[str, ...] = ()
    watched: tuple[str, ...] = ()
    check_image: Callable[[str], None] | None = None

    def port_names(self, *, host_network: bool) -> list[str]:
        """The ports a start needs: all of them when it shares the host's network."""
        return [p.name for p in self.ports if host_network or p.container is not None]


def docker_dir() -> Path:
    """The ``docker/`` folder: in a source checkout, or shipped in the wheel."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package.parent / "docker", package / "_docker"):
        if (candidate / "rabbitmq" / "rabbitmq.conf.template").is_file():
            return candidate
    raise FileNotFoundError(f"mqkit's docker/ folder is missing next to {package}")


def render(template: str, **values: object) -> str:
    """Fill a template from ``docker/`` (``$name`` placeholders); unknown ones are an error."""
    text = (docker_dir() / template).read_text()
    values.setdefault("extra", "")
    return Template(text).substitute({key: str(value) for key, value in values.items()})


def new_password() -> str:
    """A fresh random password: 192 bits, URL-safe."""
    return secrets.token_urlsafe(24)


def mosquitto_password_line(username: str, password: str, iterations: int = 101) -> str:
    """One line of a Mosquitto 2 password file, as ``mosquitto_passwd`` writes it.

    The ``$7$`` format is PBKDF2-SHA512 with a 12-byte salt; computing it here means the
    docker backend needs no Mosquitto tools on the host.
    """
    salt = secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, 64)
    encode = base64.b64encode
    return f"{username}:$7${iterations}${encode(salt).decode()}${encode(digest).decode()}\n"


# -- RabbitMQ ---------------------------------------------------------------------------

_ENABLED_PLUGINS = "[rabbitmq_management].\n"


def _rabbitmq_files(launch: Launch) -> dict[str, str]:
    state = launch.state
    # Processes get the user through the config file; the official image through its
    # RABBITMQ_DEFAULT_* variables (see _rabbitmq_container).
    extra = ("" if launch.in_container
             else f"default_user = {state.username}\ndefault_pass = {state.password}\n")
    tls = _tls_files(launch, "amqps_port")
    if tls:
        # Clients verify the server; the server asks for no client certificate.
        extra += (f"listeners.ssl.1 = {launch.bind}:{launch.settings.amqps_port}\n"
                  f"ssl_options.certfile = {tls[0]}\nssl_options.keyfile = {tls[1]}\n"
                  "ssl_options.verify = verify_none\nssl_options.fail_if_no_peer_cert = false\n")
    conf = render("rabbitmq/rabbitmq.conf.template", bind=launch.bind,
                  amqp_port=launch.ports["amqp"], management_port=launch.ports["management"],
                  memory=launch.settings.rabbitmq_memory, extra=extra)
    return {"rabbitmq.conf": conf, "enabled_plugins": _ENABLED_PLUGINS}


def _tls_files(launch: Launch, port_setting: str) -> tuple[str, str] | None:
    """``(certfile, keyfile)`` when this broker gets a TLS listener besides its plain one.

    Raises:
        ConfigError: a TLS port without a certificate, or TLS asked of a container.
    """
    from mqkit.exceptions import ConfigError

    settings = launch.settings
    if not getattr(settings, port_setting):
        return None
    if not settings.tls_cert_file:
        raise ConfigError(f"MQKIT_{port_setting.upper()} asks for a TLS listener, but no "
                          "certificate is set.", hint="Set MQKIT_TLS_CERT_FILE and "
                                                      "MQKIT_TLS_KEY_FILE too.")
    if launch.in_container:
        raise ConfigError("TLS listeners of started brokers are for the process backend.",
                          hint="Use MQKIT_BACKEND=process, or leave MQKIT_AMQPS_PORT and "
                               "MQKIT_MQTTS_PORT unset.")
    return settings.tls_cert_file, settings.tls_key_file


def _erlang_env(launch: Launch) -> dict[str, str]:
    """Erlang's node name, distribution port and epmd, all on loopback."""
    ports = launch.state.ports
    return {"RABBITMQ_NODENAME": launch.state.nodename,
            "RABBITMQ_DIST_PORT": str(ports["dist"]),
            "ERL_EPMD_PORT": str(ports["epmd"]), "ERL_EPMD_ADDRESS": LOOPBACK,
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": ERL_LOOPBACK_ARGS}


def _rabbitmq_commands(launch: Launch, binaries: dict[str, str]) -> list[Command]:
    folder, ports = launch.folder, launch.state.ports
    epmd = Command("epmd", [binaries["epmd"], "-address", LOOPBACK, "-port", str(ports["epmd"])],
                   log="epmd.log", marker=str(ports["epmd"]), listens="epmd")
    env = {
        "HOME": str(folder / "home"),  # the Erlang cookie goes here, not in the user's HOME
        "RABBITMQ_NODE_IP_ADDRESS": LOOPBACK,
        "RABBITMQ_NODE_PORT": str(ports["amqp"]),
        "RABBITMQ_MNESIA_BASE": str(folder / "mnesia"),
        "RABBITMQ_LOG_BASE": str(folder / "log"),
        "RABBITMQ_CONFIG_FILE": str(folder / "rabbitmq.conf"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(folder / "enabled_plugins"),
        # Keep /etc/rabbitmq (a system broker's files) out of this node.
        "RABBITMQ_ADVANCED_CONFIG_FILE": str(folder / "advanced.config"),
        "RABBITMQ_CONF_ENV_FILE": str(folder / "rabbitmq-env.conf"),
        # Makes the script exec the Erlang VM: the pid mqkit records is the broker's,
        # and SIGTERM reaches it directly (the VM then shuts down gracefully).
        "RUNNING_UNDER_SYSTEMD": "true",
        **_erlang_env(launch),
    }
    server = Command("rabbitmq", [binaries["rabbitmq-server"]], env=env,
                     marker=f"-home {folder / 'home'}")
    return [epmd, server]


def _rabbitmq_container(launch: Launch) -> Container:
    state = launch.state
    env = {"RABBITMQ_DEFAULT_USER": state.username, "RABBITMQ_DEFAULT_PASS": state.password}
    if launch.bind == LOOPBACK:  # host network: share the host's Erlang ports safely
        # The official entrypoint switches to long names when the host's name is a full
        # domain name; the node name is ...@localhost.
        env |= _erlang_env(launch) | {"RABBITMQ_USE_LONGNAME": "false"}
    return Container(env=env, mounts={"rabbitmq.conf": "/etc/rabbitmq/rabbitmq.conf",
                                      "enabled_plugins": "/etc/rabbitmq/enabled_plugins"})


def _check_rabbitmq_image(image: str) -> None:
    """Only the official image's ``-management`` variant has the management API mqkit reads."""
    from mqkit.exceptions import ConfigError

    if "@" in image:  # pinned by digest: nothing to read from the name
        return
    repository, _, tag = image.rpartition(":") if ":" in image.split("/")[-1] else (
        image, "", "latest")
    if repository.split("/")[-1] == "rabbitmq" and "management" not in tag:
        raise ConfigError(
            f"MQKIT_RABBITMQ_IMAGE={image!r} is RabbitMQ without the management plugin: "
            "mqkit's checks, TopologyView and readiness read the management API.",
            hint=f"Use the -management variant, e.g. {repository}:{tag.replace('latest', '4')}"
                 "-management.")


RABBITMQ = BrokerSpec(
    name="rabbitmq",
    title="RabbitMQ",
    # dist and epmd are Erlang's own ports: a second node on one host needs its own.
    ports=(Port("amqp", "amqp", "amqp_port", 5672),
           Port("management", "http", "management_port", 15672),
           Port("dist"), Port("epmd")),
    probes=("amqp", "management"),
    binaries={"rabbitmq-server": "rabbitmq_server", "epmd": None},
    image_setting="rabbitmq_image",
    files=_rabbitmq_files,
    commands=_rabbitmq_commands,
    container=_rabbitmq_container,
    log_files=lambda state: [f"log/{state.nodename}.log", "stdout.log"],
    dirs=("mnesia", "log", "home"),
    # RabbitMQ opens its AMQP port at the end of a boot of seconds.
    watched=("amqp",),
    check_image=_check_rabbitmq_image,
)


# -- Mosquitto --------------------------------------------------------------------------


def _mosquitto_files(launch: Launch) -> dict[str, str]:
    state = launch.state
    if launch.in_container:
        # The password file is copied in (owned by mosquitto, 0600), not mounted with config/.
        where = {"password_file": MOSQUITTO_PASSWORD_FILE, "data_dir": "/mosquitto/data",
                 "log_dest": "stderr"}  # stdout is block-buffered
        extra = ""
    else:
        where = {"password_file": launch.folder / "passwd", "data_dir": launch.folder / "data",
                 "log_dest": f"file {launch.folder / 'mosquitto.log'}"}
        # Run as root, mosquitto drops to user "mosquitto", which cannot read this file.
        extra = "user root\n" if os.geteuid() == 0 else ""
        tls = _tls_files(launch, "mqtts_port")
        if tls:  # a second listener; users and passwords are the same on both
            extra += (f"\nlistener {launch.settings.mqtts_port} {launch.bind}\n"
                      f"certfile {tls[0]}\nkeyfile {tls[1]}\n")
    conf = render("mosquitto/mosquitto.conf.template", bind=launch.bind,
                  mqtt_port=launch.ports["mqtt"], extra=extra, **where)
    prefix = "config/" if launch.in_container else ""
    return {"passwd": mosquitto_password_line(state.username, state.password),
            f"{prefix}mosquitto.conf": conf}


#: Where the docker backend copies Mosquitto's password file (outside the read-only config).
MOSQUITTO_PASSWORD_FILE = "/mosquitto/passwd"


def _mosquitto_commands(launch: Launch, binaries: dict[str, str]) -> list[Command]:
    conf = str(launch.folder / "mosquitto.conf")
    return [Command("mosquitto", [binaries["mosquitto"], "-c", conf], marker=conf)]


MOSQUITTO = BrokerSpec(
    name="mosquitto",
    title="Mosquitto",
    ports=(Port("mqtt", "mqtt", "mqtt_port", 1883),),
    probes=("mqtt",),
    binaries={"mosquitto": "mosquitto_binary"},
    image_setting="mosquitto_image",
    files=_mosquitto_files,
    commands=_mosquitto_commands,
    container=lambda _launch: Container(
        mounts={"config": "/mosquitto/config"},
        copies={"passwd": (MOSQUITTO_PASSWORD_FILE, "mosquitto")}),
    log_files=lambda _state: ["mosquitto.log", "stdout.log"],
    dirs=("data",),
)

#: Every broker mqkit runs, in start order.
SPECS: dict[str, BrokerSpec] = {spec.name: spec for spec in (RABBITMQ, MOSQUITTO)}

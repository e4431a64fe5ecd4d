"""The docker backend: official broker images run through the Docker SDK.

Each state directory gets its own pair of containers, labelled ``io.mqkit.*`` and named
``mqkit-<instance>-<broker>``. Configs are rendered from ``docker/`` and bind-mounted read-only;
credentials are random per start. In ``bridge`` mode (default) ports are published on
127.0.0.1 only; in ``host`` mode (``MQKIT_DOCKER_NETWORK=host``) the brokers bind loopback
ports that mqkit picks, with RabbitMQ's Erlang ports moved off the defaults so it coexists
with a broker already running on the host.
"""

from __future__ import annotations

import hashlib
import logging
import time
from typing import TYPE_CHECKING, Any

from mqkit.brokers.base import Availability, Backend, BrokerStatus, check_broker_name
from mqkit.brokers.ports import LOOPBACK, choose_ports
from mqkit.brokers.readiness import (
    probe_all,
    probe_amqp,
    probe_management,
    probe_mqtt,
    wait_until_ready,
)
from mqkit.brokers.specs import (
    ERL_LOOPBACK_ARGS,
    MOSQUITTO,
    RABBITMQ,
    SPECS,
    USERNAME,
    mosquitto_password_line,
    new_password,
    render,
)
from mqkit.brokers.state import StateStore
from mqkit.endpoints import Endpoints
from mqkit.exceptions import (
    BackendUnavailable,
    BrokerConnectionError,
    BrokerNotRunning,
    BrokerStartError,
    ImageUnavailable,
)
from mqkit.urls import amqp_url, http_url, mqtt_url

if TYPE_CHECKING:
    from docker.models.containers import Container

    from docker import DockerClient

log = logging.getLogger(__name__)

LABEL = "io.mqkit"
#: Ports the official images listen on inside their own network namespace (bridge mode).
CONTAINER_PORTS = {"amqp": 5672, "management": 15672, "mqtt": 1883}
STOP_TIMEOUT = 30


def _import_docker() -> Any:
    try:
        import docker
    except ImportError:
        raise BackendUnavailable("The Docker SDK for Python is not installed.",
                                 hint="pip install docker") from None
    return docker


class DockerBackend(Backend):
    """Run both brokers as Docker containers of the official (or configured) images."""

    name = "docker"

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self.store = StateStore(settings.state_dir, self.name)
        digest = hashlib.sha1(str(settings.state_dir.resolve()).encode()).hexdigest()
        self.instance = digest[:10]
        self._client: DockerClient | None = None

    # -- engine ------------------------------------------------------------------------

    def client(self) -> DockerClient:
        """A connected Docker client.

        Raises:
            BackendUnavailable: the SDK is missing or no engine answers.
        """
        if self._client is None:
            docker = _import_docker()
            try:
                client = docker.from_env(timeout=30, version="auto")
                client.ping()
            except docker.errors.DockerException as exc:
                raise BackendUnavailable(
                    f"No Docker engine answers: {exc}.",
                    hint="Start Docker (Docker Desktop, or `sudo systemctl start docker`), check "
                         "DOCKER_HOST and that your user may use the socket; or use "
                         "--backend process.") from None
            self._client = client
        return self._client

    def availability(self) -> Availability:
        """Available when a Docker engine answers a ping."""
        try:
            version = self.client().version().get("Version", "?")
        except BackendUnavailable as exc:
            return Availability(self.name, False, exc.message, hint=exc.hint or "")
        return Availability(self.name, True, f"Docker engine {version} answers "
                                             f"({self.settings.docker_network} network)")

    def has_state(self) -> bool:
        """True when a state file records containers started by this backend."""
        return self.store.file.exists()

    # -- lifecycle ---------------------------------------------------------------------

    def running(self) -> Endpoints | None:
        """Endpoints of this instance's containers when both run and answer."""
        state = self.store.load()
        if not state:
            return None
        try:
            containers = self._containers()
        except BackendUnavailable:
            return None
        if any(c is None or c.status != "running" for c in containers.values()):
            return None
        endpoints = self._endpoints(state)
        try:
            probe_all(endpoints, timeout=2.0)
        except BrokerConnectionError:
            return None
        return endpoints

    def start(self) -> Endpoints:
        """Start both containers, or reuse (and revive) this instance's containers."""
        client = self.client()
        state = self.store.load()
        containers = self._containers()
        if state and all(c is not None for c in containers.values()):
            stopped = [name for name, c in containers.items() if c and c.status != "running"]
            for name in stopped:
                log.info("starting stopped container %s", containers[name].name)  # type: ignore[union-attr]
                containers[name].start()  # type: ignore[union-attr]
            self._wait_ready(state, tuple(stopped) or ("mosquitto", "rabbitmq"))
            return self._endpoints(state)
        # Containers without credentials on record (or half a pair) cannot be reused.
        self._remove_containers()
        return self._start_fresh(client)

    def _start_fresh(self, client: DockerClient) -> Endpoints:
        settings = self.settings
        images = {"rabbitmq": settings.rabbitmq_image, "mosquitto": settings.mosquitto_image}
        for image in images.values():
            self._ensure_image(client, image)
        self.store.clear()
        host_mode = settings.docker_network == "host"
        requested = {"amqp": settings.amqp_port, "management": settings.management_port,
                     "mqtt": settings.mqtt_port}
        if host_mode:
            requested |= {"dist": 0, "epmd": 0}
        state: dict[str, Any] = {
            "backend": self.name, "instance": self.instance, "network": settings.docker_network,
            "username": USERNAME, "password": new_password(), "ports": choose_ports(requested),
            "images": images,
        }
        self.store.save(state)
        try:
            for broker in ("rabbitmq", "mosquitto"):
                self._run(client, broker, state)
            self._wait_ready(state, ("mosquitto", "rabbitmq"))
        except BaseException:
            self._remove_containers()
            self.store.file.unlink(missing_ok=True)
            raise
        return self._endpoints(state)

    def stop(self) -> list[str]:
        """Remove this instance's containers (and their data) and forget the credentials."""
        try:
            removed = self._remove_containers()
        finally:
            self.store.clear()
        return removed

    def restart(self, broker: str = "all") -> Endpoints:
        """``docker restart`` one broker or both; the container keeps its data."""
        state = self._require_state()
        containers = self._containers()
        brokers = check_broker_name(broker, allow_all=True)
        for name in brokers:
            container = containers.get(name)
            if container is None:
                raise BrokerNotRunning(f"The {name} container is gone.",
                                       hint="`mqkit down` then `mqkit up` starts a new pair.")
            container.restart(timeout=STOP_TIMEOUT)
        self._wait_ready(state, brokers)
        return self._endpoints(state)

    def kill(self, broker: str) -> None:
        """``docker kill`` (SIGKILL) one broker; ``restart`` or ``start`` revives it."""
        self._require_state()
        (name,) = check_broker_name(broker)
        container = self._containers().get(name)
        if container is None or container.status != "running":
            raise BrokerNotRunning(f"The {name} container is not running.",
                                   hint="Start it with mqkit.start_brokers() or `mqkit up`.")
        container.kill()
        container.wait(timeout=30)

    def status(self) -> list[BrokerStatus]:
        """Each container's Docker status."""
        state = self.store.load()
        if not state:
            return [BrokerStatus(b, False, "not started") for b in SPECS]
        result = []
        for name, container in self._containers().items():
            if container is None:
                result.append(BrokerStatus(name, False, "container missing"))
            else:
                result.append(BrokerStatus(name, container.status == "running",
                                           f"container {container.name} {container.status}"))
        return result

    def logs(self, broker: str, lines: int = 20) -> str:
        """The last lines the container wrote."""
        (name,) = check_broker_name(broker)
        try:
            container = self._containers().get(name)
        except BackendUnavailable:
            return ""
        if container is None:
            return ""
        return str(container.logs(tail=lines).decode(errors="replace")).rstrip()

    # -- internals ---------------------------------------------------------------------

    def _require_state(self) -> dict[str, Any]:
        state = self.store.load()
        if not state:
            raise BrokerNotRunning("The docker backend has no brokers running.",
                                   hint="Start them with mqkit.start_brokers() or `mqkit up`.")
        return state

    def container_name(self, broker: str) -> str:
        """The name of this instance's container for ``broker``."""
        return f"mqkit-{self.instance}-{broker}"

    def _containers(self) -> dict[str, Container | None]:
        docker = _import_docker()
        found: dict[str, Container | None] = {}
        for broker in SPECS:
            try:
                found[broker] = self.client().containers.get(self.container_name(broker))
            except docker.errors.NotFound:
                found[broker] = None
        return found

    def _remove_containers(self) -> list[str]:
        removed = []
        client = self.client()
        for container in client.containers.list(
                all=True, filters={"label": f"{LABEL}.instance={self.instance}"}):
            log.info("removing container %s", container.name)
            container.remove(force=True, v=True)
            removed.append(str(container.labels.get(f"{LABEL}.broker", container.name)))
        return removed

    def _ensure_image(self, client: DockerClient, image: str) -> None:
        docker = _import_docker()
        try:
            client.images.get(image)
            return
        except docker.errors.ImageNotFound:
            pass
        repository, _, tag = image.rpartition(":") if ":" in image.split("/")[-1] else (
            image, "", "latest")
        log.info("pulling %s (first start only) ...", image)
        last = 0.0
        try:
            for event in client.api.pull(repository, tag=tag, stream=True, decode=True):
                if "error" in event:
                    raise docker.errors.APIError(event["error"])
                if time.monotonic() - last > 2 or "progress" not in event:
                    log.info("pull %s: %s %s %s", image, event.get("id", ""),
                             event.get("status", ""), event.get("progress", ""))
                    last = time.monotonic()
        except docker.errors.DockerException as exc:
            raise ImageUnavailable(
                f"Image {image} is not on this machine and could not be pulled: {exc}.",
                hint=f"Connect to the internet and retry, `docker load` the image from a file, "
                     f"point MQKIT_{'RABBITMQ' if 'rabbit' in image else 'MOSQUITTO'}_IMAGE at "
                     "an image you have (`docker images`), or use --backend process.") from None

    def _run(self, client: DockerClient, broker: str, state: dict[str, Any]) -> Container:
        spec = SPECS[broker]
        ports, host_mode = state["ports"], state["network"] == "host"
        bind = LOOPBACK if host_mode else "0.0.0.0"
        inner = ports if host_mode else CONTAINER_PORTS
        folder = self.store.ensure_dir(broker)
        # 0644: the broker runs as its own user inside the container; the state folder
        # (0700) keeps other host users out.
        mounts: dict[str, dict[str, str]] = {}
        env: dict[str, str] = {}
        if broker == "rabbitmq":
            conf = self.store.write_private(folder / "rabbitmq.conf", render(
                RABBITMQ.template, bind=bind, amqp_port=inner["amqp"],
                management_port=inner["management"], memory=self.settings.rabbitmq_memory),
                mode=0o644)
            plugins = self.store.write_private(folder / "enabled_plugins",
                                               "[rabbitmq_management].\n", mode=0o644)
            mounts = {str(conf): {"bind": RABBITMQ.config_path, "mode": "ro"},
                      str(plugins): {"bind": "/etc/rabbitmq/enabled_plugins", "mode": "ro"}}
            env = {"RABBITMQ_DEFAULT_USER": state["username"],
                   "RABBITMQ_DEFAULT_PASS": state["password"]}
            if host_mode:
                env |= {"RABBITMQ_NODENAME": f"mqkit-{self.instance}@localhost",
                        "RABBITMQ_DIST_PORT": str(ports["dist"]),
                        "ERL_EPMD_PORT": str(ports["epmd"]), "ERL_EPMD_ADDRESS": LOOPBACK,
                        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": ERL_LOOPBACK_ARGS}
        else:
            config_dir = folder / "config"
            config_dir.mkdir(exist_ok=True)
            self.store.write_private(config_dir / "passwd", mosquitto_password_line(
                state["username"], state["password"]), mode=0o644)
            self.store.write_private(config_dir / "mosquitto.conf", render(
                MOSQUITTO.template, bind=bind, mqtt_port=inner["mqtt"],
                password_file="/mosquitto/config/passwd", data_dir="/mosquitto/data",
                log_dest="stderr"), mode=0o644)  # stdout is block-buffered
            config_dir.chmod(0o755)
            mounts = {str(config_dir): {"bind": "/mosquitto/config", "mode": "ro"}}
        options: dict[str, Any] = {}
        if host_mode:
            options["network_mode"] = "host"
        else:
            options["ports"] = {f"{CONTAINER_PORTS[p]}/tcp": (LOOPBACK, ports[p])
                                for p in spec.port_names if p in CONTAINER_PORTS}
            options["hostname"] = f"mqkit-{broker}"
        log.info("starting container %s from %s", self.container_name(broker),
                 state["images"][broker])
        docker = _import_docker()
        try:
            return client.containers.run(
                state["images"][broker], name=self.container_name(broker), detach=True,
                environment=env, volumes=mounts,
                labels={f"{LABEL}.managed": "true", f"{LABEL}.broker": broker,
                        f"{LABEL}.instance": self.instance,
                        f"{LABEL}.state-dir": str(self.settings.state_dir)},
                **options)
        except docker.errors.APIError as exc:
            raise BrokerStartError(
                f"Docker could not start the {spec.title} container "
                f"{self.container_name(broker)}: {exc.explanation or exc}.",
                hint="With a daemon started without a bridge network, set "
                     "MQKIT_DOCKER_NETWORK=host; `mqkit doctor` checks the engine; or use "
                     "--backend process.") from None

    def _endpoints(self, state: dict[str, Any]) -> Endpoints:
        user, password, ports = state["username"], state["password"], state["ports"]
        return Endpoints(
            amqp_url=amqp_url(LOOPBACK, ports["amqp"], user, password),
            mqtt_url=mqtt_url(LOOPBACK, ports["mqtt"], user, password),
            management_url=http_url(LOOPBACK, ports["management"], user, password),
            backend=self.name,
        )

    def _exited(self, broker: str) -> str | None:
        container = self._containers().get(broker)
        if container is None:
            return "the container was removed"
        container.reload()
        if container.status in ("exited", "dead"):
            code = container.attrs.get("State", {}).get("ExitCode")
            return f"container {container.name} {container.status} with code {code}"
        return None

    def _wait_ready(self, state: dict[str, Any], brokers: tuple[str, ...]) -> None:
        endpoints = self._endpoints(state)
        deadline = time.monotonic() + self.settings.startup_timeout
        probes = {"mosquitto": [lambda: probe_mqtt(endpoints.mqtt)],
                  "rabbitmq": [lambda: probe_amqp(endpoints.amqp),
                               lambda: probe_management(endpoints.management)]}  # type: ignore[arg-type]
        for broker in brokers:
            for probe in probes[broker]:
                wait_until_ready(probe, what=SPECS[broker].title, backend=self.name,
                                 timeout=max(0.1, deadline - time.monotonic()),
                                 exited=lambda b=broker: self._exited(b),
                                 logs=lambda b=broker: self.logs(b))

from pathlib import Path

import pytest

from mqkit.config import DEFAULT_RABBITMQ_IMAGE, VARIABLES, Settings
from mqkit.exceptions import ConfigError


def test_defaults_without_environment():
    settings = Settings.from_env(env={})
    assert settings.backend == "auto"
    assert settings.startup_timeout == 60.0
    assert settings.rabbitmq_image == DEFAULT_RABBITMQ_IMAGE
    assert ":" in settings.rabbitmq_image
    assert not settings.rabbitmq_image.endswith(":latest")
    assert settings.state_dir.name == "mqkit"


def test_environment_is_read_when_called(monkeypatch):
    monkeypatch.setenv("MQKIT_BACKEND", "process")
    assert Settings.from_env().backend == "process"
    monkeypatch.setenv("MQKIT_BACKEND", "docker")
    assert Settings.from_env().backend == "docker"


def test_argument_beats_environment_beats_default():
    env = {"MQKIT_BACKEND": "docker", "MQKIT_STARTUP_TIMEOUT": "90"}
    settings = Settings.from_env(env=env, backend="process")
    assert settings.backend == "process"
    assert settings.startup_timeout == 90.0


def test_state_dir_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert Settings.from_env(env={}).state_dir == tmp_path / "mqkit"
    assert Settings.from_env(env={"MQKIT_STATE_DIR": "/x/y"}).state_dir == Path("/x/y")


def test_unknown_backend_names_the_choices():
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env={"MQKIT_BACKEND": "kubernetes"})
    assert "kubernetes" in str(info.value)
    assert "Hint: Choose one of: auto, external, docker, process" in str(info.value)


@pytest.mark.parametrize(("name", "value"), [
    ("MQKIT_STARTUP_TIMEOUT", "soon"),
    ("MQKIT_STARTUP_TIMEOUT", "-1"),
    ("MQKIT_AMQP_PORT", "70000"),
    ("MQKIT_MQTT_PORT", "http"),
    ("MQKIT_DOCKER_NETWORK", "overlay"),
])
def test_bad_values_are_config_errors(name, value):
    with pytest.raises(ConfigError, match=name):
        Settings.from_env(env={name: value})


def test_unknown_override_is_refused():
    with pytest.raises(ConfigError, match="backnd"):
        Settings.from_env(env={}, backnd="process")


def test_every_variable_maps_to_a_setting():
    fields = set(Settings.__dataclass_fields__)
    for variable in VARIABLES:
        assert variable.name.startswith("MQKIT_")
        assert variable.name.removeprefix("MQKIT_").lower() in fields, variable.name


def test_readme_lists_every_variable():
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    missing = [v.name for v in VARIABLES if f"`{v.name}`" not in readme]
    assert missing == []


def test_default_pins_are_of_the_newest_line_the_tests_run():
    """The images mqkit pulls are the versions of the newest stand-ins (Debian sid)."""
    import re
    from pathlib import Path

    from mqkit.brokers.versions import TESTED_LINES, is_tested
    from mqkit.config import DEFAULT_MOSQUITTO_IMAGE

    rabbitmq = re.fullmatch(r"rabbitmq:(\d+\.\d+\.\d+)-management", DEFAULT_RABBITMQ_IMAGE)
    mosquitto = re.fullmatch(r"eclipse-mosquitto:(\d+\.\d+\.\d+)(-alpine)?",
                             DEFAULT_MOSQUITTO_IMAGE)
    assert rabbitmq, DEFAULT_RABBITMQ_IMAGE
    assert mosquitto, DEFAULT_MOSQUITTO_IMAGE
    assert is_tested("rabbitmq", rabbitmq[1])
    assert is_tested("mosquitto", mosquitto[1])
    build = (Path(__file__).parents[2] / "docker" / "standin" / "build.sh").read_text()
    sid = re.search(r"sid\)\s+RABBITMQ_LINE=(\S+)\s+MOSQUITTO_LINE=(\S+)", build)
    assert sid, "build.sh names no sid line"
    assert rabbitmq[1].startswith(sid[1] + ".")
    assert mosquitto[1].startswith(sid[2] + ".")
    assert sid[1] == TESTED_LINES["rabbitmq"][-1]
    assert sid[2] == TESTED_LINES["mosquitto"][-1]

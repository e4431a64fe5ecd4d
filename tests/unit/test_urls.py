import pika
import pytest

from mqkit.endpoints import Endpoints
from mqkit.exceptions import ConfigError
from mqkit.urls import amqp_url, mqtt_url, parse_amqp_urls, parse_url


def test_amqp_url_round_trips_through_pika():
    url = amqp_url("127.0.0.1", 5999, "us er", "p@ss/w:rd", "/")
    params = pika.URLParameters(url)
    assert (params.host, params.port, params.virtual_host) == ("127.0.0.1", 5999, "/")
    assert params.credentials.username == "us er"
    assert params.credentials.password == "p@ss/w:rd"
    parsed = parse_amqp_urls(url)[0]
    assert (parsed.username, parsed.password, parsed.vhost) == ("us er", "p@ss/w:rd", "/")


def test_amqp_vhost_other_than_default():
    assert parse_amqp_urls("amqp://u:p@h:1/student-7")[0].vhost == "student-7"
    assert parse_amqp_urls("amqp://u:p@h")[0].port == 5672


def test_several_amqp_urls_are_failover_alternatives():
    hosts = [a.host for a in parse_amqp_urls("amqp://u:p@a:5672/,amqp://u:p@b:5672/")]
    assert hosts == ["a", "b"]


def test_mqtt_url():
    address = parse_url(mqtt_url("127.0.0.1", 1999, "u", "p w"), ("mqtt",))
    assert (address.host, address.port, address.username, address.password) == (
        "127.0.0.1", 1999, "u", "p w")


@pytest.mark.parametrize(("url", "expected"), [
    ("http://u:p@host:5672/", "scheme 'http'"),
    ("amqp://u:p@:5672/", "no host"),
    ("amqp://u:p@host:notaport/", "not a valid URL"),
    ("localhost:5672", "scheme"),
])
def test_malformed_urls_are_config_errors(url, expected):
    with pytest.raises(ConfigError, match=expected) as info:
        parse_amqp_urls(url)
    assert "Hint: Use the form amqp://" in str(info.value)


def test_errors_do_not_show_passwords():
    with pytest.raises(ConfigError) as info:
        parse_amqp_urls("http://user:supersecret@host:1/")
    assert "supersecret" not in str(info.value)


def test_endpoints_json_and_repr_hide_nothing_and_leak_nothing():
    endpoints = Endpoints(amqp_url("127.0.0.1", 1, "u", "secret1"),
                          mqtt_url("127.0.0.1", 2, "u", "secret1"), "http://u:secret1@127.0.0.1:3",
                          "process")
    assert set(endpoints.to_dict()) == {"amqp_url", "mqtt_url", "management_url", "backend"}
    assert "secret1" in endpoints.to_json()
    assert "secret1" not in repr(endpoints)
    assert endpoints.management.port == 3

"""Classroom pieces without a broker: the roster's checks, limits, the record, cards, ports."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from mqkit.brokers.ports import is_port_free
from mqkit.brokers.specs import Launch
from mqkit.brokers.state import BrokerState
from mqkit.classroom.cards import card_text, read_card, systemd_unit, unit_name, write_card
from mqkit.classroom.limits import Limits
from mqkit.classroom.mosquitto import PortPool, classroom_spec
from mqkit.classroom.record import ClassroomRecord, StudentRecord, load_record, save_record
from mqkit.classroom.roster import MAX_ID_LENGTH, parse_roster, read_roster
from mqkit.config import Settings
from mqkit.exceptions import ConfigError, PortInUseError


def problems(text: str) -> str:
    with pytest.raises(ConfigError) as raised:
        parse_roster(text, "ROSTER.csv")
    return str(raised.value)


def test_a_good_roster_keeps_order_names_and_lines() -> None:
    students = parse_roster("\ufeffID, Name ,email\nann,  Ann   Lee ,a@x\n\nbo.chen_2,Bo,\n")
    assert [(s.id, s.name, s.line) for s in students] == [("ann", "Ann Lee", 2),
                                                          ("bo.chen_2", "Bo", 4)]


def test_every_problem_is_named_with_its_line_at_once() -> None:
    text = problems("id,name\nann,Ann\nANN,Ann Again\nbad id!,X\n,Nobody\nzed,\n-x,Y\n"
                    f"{'a' * (MAX_ID_LENGTH + 1)},Long\nö,Umlaut\n")
    assert "has 7 problem(s); nothing was created" in text
    for expected in ("line 3: the id 'ANN' is already used on line 2",
                     "line 4: the id 'bad id!' holds ' ', '!'",
                     "line 5: the id is empty", "line 6: the name is empty",
                     "line 7: the id '-x' must start with a letter or digit",
                     f"line 8: the id '{'a' * (MAX_ID_LENGTH + 1)}' is longer than",
                     "line 9: the id 'ö' holds 'ö'"):
        assert expected in text
    assert "\nHint: " in text


def test_a_missing_header_or_an_empty_roster_is_named() -> None:
    assert "line 1 is not a header with the columns id and name (missing: id, name" in \
        problems("ann,Ann Lee\nbo,Bo\n")
    assert "(missing: name" in problems("id,full name\nann,Ann\n")
    assert "is empty" in problems("\n\n")
    assert "has a header but no students" in problems("id,name\n")


def test_many_problems_are_cut_short() -> None:
    text = problems("id,name\n" + "".join(f"x{n},\n" for n in range(30)))
    assert "has 30 problem(s)" in text
    assert "... and 10 more" in text


def test_an_unreadable_roster_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Cannot read the roster"):
        read_roster(tmp_path / "missing.csv")
    (tmp_path / "latin1.csv").write_bytes("id,name\nann,Jos\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="UTF-8"):
        read_roster(tmp_path / "latin1.csv")


def test_limits_map_to_the_brokers_names_and_refuse_nonsense() -> None:
    limits = Limits(max_connections=10, max_length=7)
    assert limits.vhost_limits() == {"max-connections": 10, "max-queues": 200}
    assert limits.operator_policy() == {"max-length": 7, "max-length-bytes": 16 * 1024 ** 2}
    assert "max_connections 64\nmemory_limit 67108864\n" in limits.mosquitto_config()
    assert Limits.from_dict({**limits.to_dict(), "unknown": 1}) == limits
    with pytest.raises(ConfigError, match="max_queues=0"):
        Limits(max_queues=0)


def test_the_spec_adds_limits_and_listen_address(tmp_path: Path) -> None:
    spec = classroom_spec(Limits(mqtt_max_connections=5), "0.0.0.0")
    launch = Launch(BrokerState("process", "student-ann", "pw", {"mqtt": 21000}), tmp_path,
                    Settings.from_env(env={}), in_container=False, bind="127.0.0.1",
                    ports={"mqtt": 21000})
    files = spec.files(launch)
    assert "student-ann:$7$" in files["passwd"]
    conf = files["mosquitto.conf"]
    assert "listener 21000 0.0.0.0\n" in conf
    assert conf.index("listener") < conf.index("max_connections 5\n")
    with pytest.raises(ConfigError, match="cannot listen on"):
        classroom_spec(Limits(), "10.0.0.1")


def _record() -> ClassroomRecord:
    record = ClassroomRecord(broker="http://127.0.0.1:15672", public_host="mq.example.edu",
                             amqp_port=5672, management_scheme="http", management_port=15672,
                             prefix="student-", mqtt_listen="0.0.0.0", mqtt_ports=(21000, 21009))
    record.students["ann"] = StudentRecord("ann", "Ann Lee", "student-ann", "pw1", 21000, "pw2",
                                           ready=True, created="2026-01-01T00:00:00+00:00")
    return record


def test_the_record_survives_a_round_trip_privately(tmp_path: Path) -> None:
    record = _record()
    save_record(tmp_path / "room", record)
    assert stat.S_IMODE((tmp_path / "room").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "room" / "classroom.json").stat().st_mode) == 0o600
    assert load_record(tmp_path / "room") == record
    assert load_record(tmp_path / "elsewhere") is None
    assert record.find("ANN") is record.students["ann"]
    (tmp_path / "room" / "classroom.json").write_text("{}")
    with pytest.raises(ConfigError, match="format None"):
        load_record(tmp_path / "room")


def test_a_card_holds_the_instruction_and_the_four_urls(tmp_path: Path) -> None:
    record = _record()
    student = record.students["ann"]
    text = card_text(record, student)
    assert text.count("\n") == 6
    assert text.startswith("# mqkit connection card of Ann Lee (ann), private")
    path = write_card(tmp_path, record, student)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_card(path) == {
        "MQKIT_BACKEND": "external",
        "MQKIT_AMQP_URL": "amqp://student-ann:pw1@mq.example.edu:5672/student-ann",
        "MQKIT_MQTT_URL": "mqtt://student-ann:pw2@mq.example.edu:21000",
        "MQKIT_MANAGEMENT_URL": "http://student-ann:pw1@mq.example.edu:15672",
        # The progress board's vhost: the prefix without its dash, then ":progress".
        "MQKIT_CLASSROOM_URL": "amqp://student-ann:pw1@mq.example.edu:5672/student%3Aprogress"}


def test_the_systemd_unit_runs_up_at_boot_and_down_at_stop(tmp_path: Path) -> None:
    folder = tmp_path / "course 2026"
    folder.mkdir()
    unit = systemd_unit(folder, python="/opt/venv/bin/python")
    assert unit_name(folder) == "mqkit-classroom-course-2026.service"
    assert f"ExecStart=/opt/venv/bin/python -m mqkit classroom up '{folder}'" in unit
    assert f"ExecStop=/opt/venv/bin/python -m mqkit classroom down '{folder}'" in unit
    assert "Type=oneshot\nRemainAfterExit=yes" in unit
    assert "WantedBy=multi-user.target" in unit


def test_the_port_pool_skips_the_classroom_s_ports_and_ends_with_its_range() -> None:
    first = next(p for p in range(23000, 24000) if all(is_port_free(p + k) for k in range(3)))
    pool = PortPool({first + 1}, first=first, last=first + 2)
    assert [pool.take(), pool.take()] == [first, first + 2]
    with pytest.raises(PortInUseError, match="No free MQTT port left"):
        pool.take()
    anywhere = PortPool(set())
    assert anywhere.take() != anywhere.take()


def test_a_cluster_s_cards_list_every_node(tmp_path: Path) -> None:
    record = _record()
    record.failover = ["mq2.example.edu:5672", "127.0.0.1:5673"]
    save_record(tmp_path / "room", record)
    assert load_record(tmp_path / "room") == record  # the nodes are kept
    urls = record.urls(record.students["ann"])
    assert urls["MQKIT_AMQP_URL"] == (
        "amqp://student-ann:pw1@mq.example.edu:5672/student-ann,"
        "amqp://student-ann:pw1@mq2.example.edu:5672/student-ann,"
        "amqp://student-ann:pw1@127.0.0.1:5673/student-ann")
    assert urls["MQKIT_CLASSROOM_URL"].count(",") == 2
    assert urls["MQKIT_CLASSROOM_URL"].endswith("@127.0.0.1:5673/student%3Aprogress")

"""The ``mqkit`` command: up, down, status, doctor, restart, kill, logs, lab, grade, classroom."""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mqkit.brokers import launcher
from mqkit.brokers.base import as_dict
from mqkit.config import BACKENDS
from mqkit.exceptions import MQKitError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mqkit", description="Real RabbitMQ and Mosquitto brokers for messaging labs.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.add_argument("--backend", choices=BACKENDS, default=None,
                             help="where the brokers come from (default: MQKIT_BACKEND or auto)")
        return command

    up = add("up", "start both brokers (or reuse running ones) and print their URLs")
    up.add_argument("--json", action="store_true", help="print one JSON object")
    up.add_argument("--nodes", type=int, default=1, metavar="N",
                    help="N > 1: a local RabbitMQ cluster of N nodes (process backend) whose "
                         "AMQP URL lists every node")
    add("down", "stop the brokers mqkit started and remove their data")
    status = add("status", "show which brokers run and where")
    status.add_argument("--json", action="store_true", help="print one JSON object")
    add("doctor", "tell for each backend whether it can run here, and how to fix it; check "
                  "the security of running brokers")
    restart = add("restart", "restart a broker mqkit runs (data is kept)")
    restart.add_argument("broker", nargs="?", default="all",
                         choices=("rabbitmq", "mosquitto", "all"))
    kill = add("kill", "kill a broker abruptly (SIGKILL), for fault demonstrations")
    kill.add_argument("broker", choices=("rabbitmq", "mosquitto"))
    logs = add("logs", "print the last log lines of a broker")
    logs.add_argument("broker", choices=("rabbitmq", "mosquitto"))
    logs.add_argument("-n", "--lines", type=int, default=40)
    lab = add("lab", "start the brokers and JupyterLab on the labs")
    lab.add_argument("--dir", default=None, help="folder to open (default: ./labs)")
    lab.add_argument("--stop-on-exit", action="store_true",
                     help="stop the brokers when JupyterLab exits")
    lab.add_argument("jupyter_args", nargs=argparse.REMAINDER,
                     help="arguments passed on to `jupyter lab`")
    build = sub.add_parser("build-labs", help="generate student and solution notebooks from "
                           "labs/_src", description="Generate labs/NN-*.ipynb (student) and "
                           "labs/solutions/NN-*.ipynb from the sources in labs/_src.")
    build.add_argument("--labs", default="labs", help="the labs folder (default: ./labs)")
    build.add_argument("--check", action="store_true",
                       help="write nothing; exit 1 when a notebook differs from its source")
    build.add_argument("--release", default=None, metavar="DIR",
                       help="write the student release into DIR: student notebooks, Binder "
                            "files and the requirement on mqkit, no solutions")
    build.add_argument("--requirement", default=None, metavar="SPEC",
                       help="with --release: the pip requirement on mqkit (default: this "
                            "version)")
    build.add_argument("--format", default="notebooks", dest="layout",
                       choices=("notebooks", "nbgrader", "otter"),
                       help="notebooks (default): the labs' own notebooks; nbgrader: an "
                            "nbgrader course in DIR; otter: Otter-Grader assignments in DIR")
    build.add_argument("out", nargs="?", default=None, metavar="DIR",
                       help="with --format nbgrader or otter: the folder to write")
    build.add_argument("--checks", default=None, metavar="FILE",
                       help="with --format nbgrader or otter: an extra-checks file, whose "
                            "checks become hidden tests")
    build.add_argument("--lab", action="append", default=None, metavar="NN",
                       help="with --format nbgrader or otter: only this lab (repeatable)")
    grade = sub.add_parser("grade", help="grade submitted notebooks of a lab into a gradebook",
                           description="Run each submission headless in its own vhost, user "
                           "and Mosquitto, check the broker state it left, and write a CSV "
                           "gradebook (and Markdown feedback).")
    grade.add_argument("lab", help="the lab number, e.g. 02")
    grade.add_argument("submissions", nargs="*", metavar="SUBMISSION",
                       help="the students' .ipynb files (none with --live)")
    grade.add_argument("--live", default=None, metavar="DIR",
                       help="grade the classroom DIR's students on what their namespaces "
                            "hold now, without running notebooks (the card's broker)")
    grade.add_argument("--out", default="grades.csv", help="gradebook CSV (default: grades.csv)")
    grade.add_argument("--feedback", default=None, metavar="DIR",
                       help="write <student>.md feedback files into DIR")
    grade.add_argument("--workers", type=int, default=1, help="submissions graded in parallel")
    grade.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS",
                       help="seconds one cell may run (a notebook gets 5x that in all)")
    grade.add_argument("--checks", default=None, metavar="EXTRA.py",
                       help="a Python file with the instructor's extra (hidden) checks")
    grade.add_argument("--hint-level", type=int, default=1, metavar="N",
                       help="hint levels per unmet check in the feedback (default 1: the "
                            "concept only; the last level shows code)")
    grade.add_argument("--backend", choices=BACKENDS, default=None,
                       help="where the instructor's brokers come from")
    grade.add_argument("--sandbox", choices=("auto", "docker", "user", "none"), default="auto",
                       help="where the untrusted notebooks run: auto (docker, else user, else "
                            "an error), docker (a container per submission: read-only, no "
                            "network but its brokers, limits; needs a Docker Engine and the "
                            "stand-in base image), user (a dedicated user per worker, "
                            "private namespaces, limits; needs root on Linux), none (as you, "
                            "with your files and local services in reach: only on purpose)")
    _classroom_parser(sub)
    return parser


def _classroom_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    text = ("a private namespace per student on a shared RabbitMQ (a vhost, a user, limits) "
            "and a Mosquitto of their own, handed out as connection cards")
    classroom = sub.add_parser("classroom", help=text, description=text[0].upper() + text[1:]
                               + ". See docs/classroom.md.")
    actions = classroom.add_subparsers(dest="action", required=True, metavar="ACTION")

    def broker_options(command: argparse.ArgumentParser) -> None:
        command.add_argument("--admin-url", default=None, metavar="URL",
                             help="an administrator's management URL, http://USER:PASS@HOST:"
                                  "15672 (default: MQKIT_MANAGEMENT_URL, else mqkit's own "
                                  "brokers)")

    create = actions.add_parser(
        "create", help="make a namespace and a card for every student of a roster who has "
                       "none yet", description="Make, per student of ROSTER.csv (columns "
        "id,name) who has none yet: a vhost and a user on the classroom RabbitMQ, with limits "
        "and an operator policy; a Mosquitto run by mqkit; and a card DIR/<id>.env. Students "
        "already in DIR keep their passwords and cards.")
    create.add_argument("roster", metavar="ROSTER.csv")
    create.add_argument("--out", required=True, metavar="DIR", help="the classroom folder")
    broker_options(create)
    create.add_argument("--amqp-port", type=int, default=None, metavar="N",
                        help="the AMQP port in the cards (default: the broker's listener)")
    create.add_argument("--public-host", default=None, metavar="HOST",
                        help="the host name in the cards (default: the broker's host)")
    create.add_argument("--prefix", default=None,
                        help="before each id in vhost and user names (default: student-)")
    create.add_argument("--mqtt-listen", default=None, choices=("127.0.0.1", "0.0.0.0"),
                        help="where the students' Mosquittos listen (default: loopback when "
                             "the public host is loopback, else every interface)")
    create.add_argument("--mqtt-ports", default=None, metavar="FIRST-LAST",
                        help="a port range for the students' Mosquittos (default: any free)")
    create.add_argument("--cluster-nodes", default=None, metavar="HOST:PORT,...",
                        help="the other AMQP nodes of a department's cluster, as students "
                             "reach them: the cards list them after the first so clients "
                             "fail over (default: the nodes of mqkit's own cluster, else none)")
    create.add_argument("--workers", type=int, default=4, help="students set up at once")
    for name, meaning in (("max-connections", "AMQP connections per student (default 64)"),
                          ("max-queues", "queues per student (default 200)"),
                          ("max-length", "messages per queue (default 10000)"),
                          ("max-length-bytes", "bytes per queue (default 16 MiB)"),
                          ("mqtt-max-connections", "MQTT clients per student (default 64)")):
        create.add_argument(f"--{name}", type=int, default=None, metavar="N", help=meaning)
    listing = actions.add_parser("list", help="show the students, their Mosquitto and whether "
                                 "they are connected")
    listing.add_argument("dir", metavar="DIR")
    broker_options(listing)
    listing.add_argument("--json", action="store_true", help="print one JSON list")
    remove = actions.add_parser("remove", help="delete everything of some students: "
                                "connections, vhost, user, Mosquitto, card")
    remove.add_argument("dir", metavar="DIR")
    remove.add_argument("students", nargs="*", metavar="STUDENT", help="student ids")
    remove.add_argument("--roster", default=None, metavar="FILE",
                        help="remove every student of this roster")
    broker_options(remove)
    up = actions.add_parser("up", help="start the students' Mosquittos that do not run (after "
                            "a reboot; the generated systemd unit runs this)")
    up.add_argument("dir", metavar="DIR")
    down = actions.add_parser("down", help="stop the students' Mosquittos (data, ports and "
                              "passwords stay)")
    down.add_argument("dir", metavar="DIR")
    progress = actions.add_parser(
        "progress", help="the live progress board: students x a lab's checks",
        description="Show students x checks, passed or not yet, and each student's last "
        "activity. Fed by the students' self-checks (their cards send the verdicts) and by "
        "the lab's read-only checks run on each namespace. Refreshes every --interval "
        "seconds until Ctrl-C; --once prints it once.")
    progress.add_argument("dir", metavar="DIR")
    broker_options(progress)
    progress.add_argument("--lab", default=None, metavar="NN",
                          help="columns are this lab's checks (default: every check seen)")
    progress.add_argument("--csv", default=None, metavar="FILE",
                          help="also write the grid as CSV (rewritten at every refresh)")
    progress.add_argument("--once", action="store_true", help="refresh once, print, exit")
    progress.add_argument("--interval", type=float, default=10.0, metavar="S",
                          help="seconds between refreshes (default 10)")
    progress.add_argument("--no-probe", action="store_true",
                          help="only the self-checks' verdicts; run no check on the namespaces")
    load = actions.add_parser(
        "load", help="rehearse: simulate the class at a human pace and report what it saw",
        description="Simulate the classroom's students in their own namespaces (labs 03 and "
        "04: one confirmed message a second each, consumed with acks) and report latency, "
        "messages lost and cross-student deliveries. Run it before the class, not during.")
    load.add_argument("dir", metavar="DIR")
    load.add_argument("--seconds", type=float, default=30.0, help="how long (default 30)")
    load.add_argument("--students", type=int, default=None, metavar="N",
                      help="simulate the first N students only (default: all)")
    load.add_argument("--json", action="store_true", help="print one JSON object")


def _classroom(args: argparse.Namespace) -> int:
    from mqkit import classroom as room

    folder = Path(args.dir if args.action != "create" else args.out)
    # One line per student, not the five of each Mosquitto's start.
    logging.getLogger("mqkit.brokers").setLevel(logging.WARNING)
    classroom = room.Classroom(folder)
    if args.action == "create":
        return _classroom_create(args, classroom)
    if args.action == "list":
        try:
            broker: room.ClassBroker | None = room.connect(args.admin_url)
        except MQKitError as exc:
            classroom.record()  # no classroom at all is the error to show
            print(f"mqkit: the classroom broker cannot be asked ({exc.message}); vhosts and "
                  "connections are unknown.", file=sys.stderr)
            broker = None
        rows = classroom.status(broker)
        if args.json:
            print(json.dumps([{**vars(row), "is_connected": row.is_connected} for row in rows],
                             sort_keys=True))
        else:
            _print_class(rows)
    elif args.action == "remove":
        ids = list(args.students)
        if args.roster:
            ids += [student.id for student in room.read_roster(args.roster)]
        if not ids:
            print("mqkit: error: name the students to remove, or --roster FILE.",
                  file=sys.stderr)
            return 2
        classroom.record()
        removed = classroom.remove(ids, room.connect(args.admin_url))
        print(f"removed {len(removed)}: {', '.join(removed)}")
    elif args.action == "up":
        report = classroom.up()
        print(f"started {len(report.started)}, already running {len(report.running)}"
              + (f", FAILED {len(report.failed)}" if report.failed else ""))
        for student_id, reason in sorted(report.failed.items()):
            print(f"  {student_id}: {reason}", file=sys.stderr)
        return 1 if report.failed else 0
    elif args.action == "progress":
        return _classroom_progress(args, classroom)
    elif args.action == "load":
        from mqkit.classroom.load import run_load

        result = run_load(classroom.record(), args.seconds, students=args.students)
        if args.json:
            print(json.dumps(result.to_dict(), sort_keys=True))
        else:
            print(f"{result.students} students, {args.seconds:g} s: {result.confirmed} "
                  f"confirmed, {result.received} received, lost {result.lost}, "
                  f"cross-student {result.cross}, duplicates {result.duplicates}; latency "
                  f"p50 {result.p50_ms} ms, p99 {result.p99_ms} ms")
            for student, error in sorted(result.errors.items()):
                print(f"  {student}: {error}", file=sys.stderr)
        return 1 if result.lost or result.cross or result.errors else 0
    elif args.action == "down":
        stopped = classroom.down()
        print(f"stopped {len(stopped)} Mosquittos" + (f": {', '.join(stopped)}" if stopped
                                                       else ""))
    return 0


def _classroom_progress(args: argparse.Namespace, classroom: Any) -> int:
    from mqkit import classroom as room
    from mqkit.classroom.progress import ProgressBoard

    classroom.record()  # no classroom at all is the error to show
    board = ProgressBoard(classroom, room.connect(args.admin_url), args.lab,
                          probe=not args.no_probe)
    interval = max(1.0, args.interval)
    try:
        while True:
            board.refresh()
            if args.csv:
                Path(args.csv).write_text(board.to_csv())
            stamp = time.strftime("%H:%M:%S")
            if args.once:
                print(board.table())
                return 0
            # Redrawn in place, like `watch`: the board is meant for a projector.
            print(f"\033[H\033[J{classroom.folder.name} — lab {args.lab or 'all'} — {stamp} "
                  f"(every {interval:g} s, Ctrl-C to stop)\n\n{board.table()}", flush=True)
            time.sleep(interval)
    except KeyboardInterrupt:
        return 0


def _classroom_create(args: argparse.Namespace, classroom: Any) -> int:
    from mqkit import classroom as room
    from mqkit.classroom.cards import INSTRUCTOR_CSV, unit_name

    students = room.read_roster(args.roster)  # a bad roster fails before any broker is asked
    ports = None
    if args.mqtt_ports:
        try:
            first, last = (int(part) for part in args.mqtt_ports.split("-"))
        except ValueError:
            print(f"mqkit: error: --mqtt-ports {args.mqtt_ports!r} is not FIRST-LAST, e.g. "
                  "21000-21199.", file=sys.stderr)
            return 2
        ports = (first, last)
    given = {name: getattr(args, name) for name in ("max_connections", "max_queues",
                                                    "max_length", "max_length_bytes",
                                                    "mqtt_max_connections")
             if getattr(args, name) is not None}
    limits = room.Limits(**given) if given else None
    nodes = None if args.cluster_nodes is None else room.parse_nodes(args.cluster_nodes)
    broker = room.connect(args.admin_url, args.amqp_port, start=True)
    report = classroom.create(students, broker, public_host=args.public_host,
                              prefix=args.prefix, limits=limits, mqtt_listen=args.mqtt_listen,
                              mqtt_ports=ports, cluster_nodes=nodes, workers=args.workers)
    folder = classroom.folder
    print(f"added {len(report.added)}, kept {len(report.kept)}, repaired "
          f"{len(report.repaired)}, Mosquittos restarted {len(report.restarted)} "
          f"({report.seconds:.1f} s)")
    if report.absent:
        print(f"not in this roster, kept: {', '.join(report.absent)} (`mqkit classroom remove "
              f"{folder} ID...` deletes them)")
    print(f"cards:      {folder}/<id>.env (hand each student their own)")
    print(f"instructor: {folder / INSTRUCTOR_CSV}")
    print(f"at boot:    {folder / unit_name(folder)} (not installed; its first lines say how)")
    return 0


def _print_class(rows: list[Any]) -> None:
    if not rows:
        print("no students")
        return

    def count(n: int | None) -> str:
        return "?" if n is None else f"yes ({n})" if n else "no"

    width = max(len(row.id) for row in rows)
    name_width = min(30, max(len(row.name) for row in rows))
    print(f"{'id':<{width}}  {'name':<{name_width}}  {'mosquitto':<12}  {'vhost':<10}  "
          f"{'amqp':<9}  mqtt")
    for row in rows:
        mosquitto = f"{'up' if row.is_mosquitto_running else 'DOWN'} :{row.mqtt_port}"
        vhost = {None: "?", True: "ok", False: "MISSING"}[row.has_vhost]
        if not row.is_ready:
            vhost = "UNFINISHED"
        print(f"{row.id:<{width}}  {row.name[:name_width]:<{name_width}}  {mosquitto:<12}  "
              f"{vhost:<10}  {count(row.connections):<9}  {count(row.mqtt_clients)}")
    print(f"{len(rows)} students, {sum(bool(r.is_connected) for r in rows)} connected over "
          f"AMQP, {sum(bool(r.mqtt_clients) for r in rows)} over MQTT, "
          f"{sum(r.is_mosquitto_running for r in rows)} Mosquittos running")


def _print_endpoints(endpoints: launcher.Endpoints, as_json: bool) -> None:
    if as_json:
        print(endpoints.to_json())
        return
    print(f"backend:        {endpoints.backend}")
    print(f"amqp_url:       {endpoints.amqp_url}")
    print(f"mqtt_url:       {endpoints.mqtt_url}")
    print(f"management_url: {endpoints.management_url or '(none)'}")


def _status(backend: str | None, as_json: bool) -> int:
    report = launcher.broker_status(backend)
    endpoints = report["endpoints"]
    if as_json:
        print(json.dumps({
            "backend": report["backend"],
            "brokers": as_dict(report["brokers"]),
            "endpoints": endpoints.to_dict() if endpoints else None,
        }, sort_keys=True))
    elif report["backend"] is None:
        print("No brokers: mqkit runs none and no external broker is configured.")
        print("Start them with `mqkit up`.")
    else:
        print(f"backend: {report['backend']}")
        for status in report["brokers"]:
            print(f"  {status.broker:<10} {'up' if status.is_running else 'DOWN':<5} "
                  f"{status.detail}")
        if endpoints:
            _print_endpoints(endpoints, False)
        else:
            print("Not all brokers run: `mqkit up` starts (or revives) them.")
    return 0 if report["backend"] and endpoints else 1


def _doctor() -> int:
    results = launcher.doctor()
    for result in results:
        mark = "ok " if result.is_available else "no "
        print(f"[{mark}] {result.backend:<9} {result.reason}")
        if not result.is_available and result.hint:
            print(f"           fix: {result.hint}")
    _security_report()
    _version_report()
    if not any(r.is_available for r in results):
        print("\nNo backend can give you a broker yet: apply one of the fixes above.")
        return 1
    return 0


def _security_report() -> None:
    """The security self-check of the brokers in use, when there are any."""
    from mqkit.security import check_security

    endpoints = launcher.broker_status()["endpoints"]
    if endpoints is None:
        print("[-- ] security  no brokers run now; after `mqkit up`, the doctor checks them too")
        return
    findings = check_security(endpoints)
    if not findings:
        print(f"[ok ] security  {endpoints.backend} brokers: listeners on loopback only, guest "
              "refused, anonymous MQTT refused")
    for finding in findings:
        print(f"[no ] security  {finding.broker} {finding.check}: {finding.detail}")
        print(f"           fix: {finding.hint}")


def _version_report() -> None:
    """The running brokers' versions, and a warning for a line the tests do not run."""
    from mqkit.brokers.versions import TESTED_LINES, broker_versions

    endpoints = launcher.broker_status()["endpoints"]
    if endpoints is None:
        print("[-- ] versions  no brokers run now; after `mqkit up`, the doctor reports them")
        return
    for found in broker_versions(endpoints):
        tested = ", ".join(TESTED_LINES[found.broker])
        if found.version is None:
            print(f"[no ] version   {found.broker}: unknown ({found.detail})")
        elif found.is_tested:
            print(f"[ok ] version   {found.broker} {found.version} (tested lines: {tested})")
        else:
            print(f"[!! ] version   {found.broker} {found.version} is outside the tested lines "
                  f"({tested}): labs may show other outputs or error texts")


def _wait_for_jupyter(process: subprocess.Popen[bytes]) -> int:
    """Wait for JupyterLab to exit; Ctrl-C gives it time to stop its kernels first."""
    interrupted = False
    for grace in (None, 15.0, 15.0):
        try:
            process.wait(grace)
            break
        except KeyboardInterrupt:
            interrupted = True  # the terminal sent SIGINT to JupyterLab as well
        except subprocess.TimeoutExpired:
            process.terminate()
    else:
        process.kill()
        process.wait()
    return 0 if interrupted or process.returncode < 0 else process.returncode


def _lab(args: argparse.Namespace) -> int:
    folder = Path(args.dir) if args.dir else Path.cwd() / "labs"
    if not folder.is_dir():
        print(f"mqkit: error: no labs folder at {folder}.\n"
              "Hint: run `mqkit lab` from the mqkit checkout, or pass --dir.", file=sys.stderr)
        return 2
    # Prestart: the brokers boot while JupyterLab starts, in a process of their own (same
    # user, same state directory). A lab's first start_brokers() waits on the state
    # directory's lock for what is left, and reports the error itself if the launch failed.
    prestart = subprocess.Popen(
        [sys.executable, "-m", "mqkit", "up", *(["--backend", args.backend] if args.backend
                                                else [])],
        env=dict(os.environ), stdin=subprocess.DEVNULL, start_new_session=True)
    jupyter = shutil.which("jupyter") or str(Path(sys.executable).with_name("jupyter"))
    extra = [a for a in args.jupyter_args if a != "--"]
    if os.geteuid() == 0 and "--allow-root" not in extra:
        extra.append("--allow-root")  # containers and lab VMs often run as root
    print(f"Starting JupyterLab on {folder} (Ctrl-C to stop) ...", flush=True)
    process = subprocess.Popen([jupyter, "lab", f"--notebook-dir={folder}", *extra],
                               env=dict(os.environ))
    # `kill`, `docker stop`, a closed terminal: let JupyterLab shut down, then say goodbye.
    previous = signal.signal(signal.SIGTERM, lambda _sig, _frame: process.terminate())
    try:
        code = _wait_for_jupyter(process)
    finally:
        signal.signal(signal.SIGTERM, previous)
    started = prestart.wait() == 0  # never leave the launch half done behind us
    if args.stop_on_exit:
        launcher.stop_brokers(args.backend)
        print("Brokers stopped.")
    elif started:
        backend = launcher.broker_status(args.backend)["backend"]
        print(f"JupyterLab has exited. The brokers keep running ({backend} backend); "
              "`mqkit down` stops them.")
    else:
        print("JupyterLab has exited. The brokers did not start (see the error above); "
              "`mqkit doctor` tells why.")
    return code


def _grade(args: argparse.Namespace) -> int:
    from mqkit.grading.grader import (
        collect,
        grade,
        lab_checks,
        load_extra_checks,
        normalize_lab,
        summary_lines,
    )
    from mqkit.grading.sandbox import choose_sandbox

    if args.workers < 1 or args.timeout <= 0:
        print("mqkit: error: --workers must be at least 1 and --timeout positive.",
              file=sys.stderr)
        return 2
    # Wrong arguments are reported before any broker starts.
    lab = normalize_lab(args.lab)
    # The instructor's file runs once per grading run; grade() gets the loaded checks.
    extra = load_extra_checks(args.checks) if args.checks else None
    lab_checks(lab, extra)
    if args.live:
        return _grade_live(args, lab, extra)
    if not args.submissions:
        print("mqkit: error: name the submitted notebooks, or --live DIR for a classroom.",
              file=sys.stderr)
        return 2
    collect(lab, args.submissions)
    sandbox = choose_sandbox(args.sandbox, slots=args.workers)  # before any broker starts
    try:
        gradebook = grade(args.lab, args.submissions, out=args.out,
                          feedback_dir=args.feedback, workers=args.workers,
                          timeout=args.timeout, extra_checks=extra,
                          hint_level=args.hint_level, sandbox=sandbox,
                          broker=launcher.start_brokers(args.backend))
    finally:
        sandbox.close()
    if sandbox.name == "none":
        print("warning: graded without a sandbox (--sandbox none): the notebooks ran as you",
              file=sys.stderr)
    for line in summary_lines(gradebook):
        print(line)
    print(f"gradebook: {args.out}" + (f"; feedback: {args.feedback}/" if args.feedback else ""))
    return 0


def _grade_live(args: argparse.Namespace, lab: str, extra: Any) -> int:
    from mqkit.classroom import Classroom
    from mqkit.classroom.live import grade_live
    from mqkit.grading.grader import summary_lines, write_feedback

    if args.submissions:
        print("mqkit: error: --live grades the classroom's namespaces; name no notebooks.",
              file=sys.stderr)
        return 2
    gradebook = grade_live(Classroom(args.live), lab, extra, hint_level=args.hint_level,
                           workers=max(1, args.workers))
    Path(args.out).write_text(gradebook.to_csv(), encoding="utf-8")
    if args.feedback:
        write_feedback(gradebook, args.feedback)
    for line in summary_lines(gradebook):
        print(line)
    print(f"gradebook: {args.out}" + (f"; feedback: {args.feedback}/" if args.feedback else ""))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``mqkit`` command line; return the exit code."""
    args = _parser().parse_args(argv)
    # Progress (image pulls, broker starts) goes to stderr, so `--json` output stays clean.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("mqkit: %(message)s"))
    package_logger = logging.getLogger("mqkit")
    package_logger.addHandler(handler)
    package_logger.setLevel(logging.INFO)
    try:
        if args.command == "up":
            _print_endpoints(launcher.start_brokers(args.backend, nodes=args.nodes), args.json)
        elif args.command == "down":
            stopped = launcher.stop_brokers(args.backend)
            print(f"stopped: {', '.join(stopped)}" if stopped else "nothing to stop")
        elif args.command == "status":
            return _status(args.backend, args.json)
        elif args.command == "doctor":
            return _doctor()
        elif args.command == "restart":
            _print_endpoints(launcher.restart_broker(args.broker, args.backend), False)
        elif args.command == "kill":
            launcher.kill_broker(args.broker, args.backend)
            print(f"killed {args.broker}; `mqkit restart {args.broker}` brings it back")
        elif args.command == "logs":
            print(launcher.active_backend(args.backend).logs(args.broker, args.lines))
        elif args.command == "lab":
            return _lab(args)
        elif args.command == "build-labs":
            from mqkit.authoring import build_labs, release

            if args.layout != "notebooks":
                return _build_graded(args)
            if args.release:
                written = release(Path(args.labs), Path(args.release),
                                  requirement=args.requirement)
                print(f"release: {len(written)} files in {args.release} (no solutions)")
                return 0
            drifted = build_labs(Path(args.labs), check=args.check)
            for path in drifted:
                print(f"{'differs from its source' if args.check else 'written'}: {path}")
            return 1 if args.check and drifted else 0
        elif args.command == "grade":
            return _grade(args)
        elif args.command == "classroom":
            return _classroom(args)
    except MQKitError as exc:
        print(f"mqkit: error: {exc}", file=sys.stderr)
        return 1
    return 0


def _build_graded(args: argparse.Namespace) -> int:
    """``build-labs --format nbgrader|otter DIR``: a course or assignments from the sources."""
    from mqkit.authoring import render_notebook, require_labs
    from mqkit.grading.export import LabNotebooks

    if not args.out:
        print(f"mqkit: error: --format {args.layout} needs the folder to write (DIR)",
              file=sys.stderr)
        return 2
    wanted = {f"{int(n):02d}" for n in args.lab or ()}
    labs = []
    for lab in require_labs(Path(args.labs)):
        if wanted and lab.name[:2] not in wanted:
            continue
        text = lab.source.read_text(encoding="utf-8")
        labs.append(LabNotebooks(
            lab.name, render_notebook(text, "student", lab.name, with_outputs=False),
            render_notebook(text, "solution", lab.name, with_outputs=False)))
    if args.layout == "nbgrader":
        from mqkit.grading.nbgrader_course import build_course
    else:
        from mqkit.grading.otter_assignment import build_course
    written = build_course(Path(args.out), labs, args.checks)
    print(f"{args.layout}: {len(labs)} labs, {len(written)} files in {args.out}")
    return 0


def run() -> None:
    """The ``mqkit`` program: :func:`main`, then exit with its code."""
    code = main()
    # The command is done: exit without the collector walking every imported module's
    # objects at interpreter shutdown (0.04-0.09 s of `mqkit up`, benchmarks/startup.py).
    # Only here, never in main(), which tests call in their own process.
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    run()

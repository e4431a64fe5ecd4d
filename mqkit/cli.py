"""The ``mqkit`` command: up, down, status, doctor, restart, kill, logs, lab, grade."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

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
    grade = sub.add_parser("grade", help="grade submitted notebooks of a lab into a gradebook",
                           description="Run each submission headless in its own vhost, user "
                           "and Mosquitto, check the broker state it left, and write a CSV "
                           "gradebook (and Markdown feedback).")
    grade.add_argument("lab", help="the lab number, e.g. 02")
    grade.add_argument("submissions", nargs="+", metavar="SUBMISSION",
                       help="the students' .ipynb files")
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
    return parser


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

    if args.workers < 1 or args.timeout <= 0:
        print("mqkit: error: --workers must be at least 1 and --timeout positive.",
              file=sys.stderr)
        return 2
    # Wrong arguments are reported before any broker starts.
    lab = normalize_lab(args.lab)
    # The instructor's file runs once per grading run; grade() gets the loaded checks.
    extra = load_extra_checks(args.checks) if args.checks else None
    lab_checks(lab, extra)
    collect(lab, args.submissions)
    gradebook = grade(args.lab, args.submissions, out=args.out, feedback_dir=args.feedback,
                      workers=args.workers, timeout=args.timeout, extra_checks=extra,
                      hint_level=args.hint_level,
                      broker=launcher.start_brokers(args.backend))
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
            _print_endpoints(launcher.start_brokers(args.backend), args.json)
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
    except MQKitError as exc:
        print(f"mqkit: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

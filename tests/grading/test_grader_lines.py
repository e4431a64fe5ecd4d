"""The same submissions get the same scores on the newer broker lines (issue 14).

``test_grader.py`` grades labs 02 and 03 — honest, partial, broken, hostile submissions — on
the process backend (RabbitMQ 3.10.8, Mosquitto 2.0.11). Here the same submissions are
graded on each Docker line of reach ``full`` (``tests/lines.py``: RabbitMQ 4.3 / Mosquitto
2.1 in ``make test``, every line in ``make test-matrix``), and every student's score per
check and the run's outcome must be exactly what they are on 3.10: a course that moves its
broker to 4.x grades nobody differently.
"""

from __future__ import annotations

import pytest

from mqkit.admin import Admin
from mqkit.grading.grader import grade
from tests.grading import submissions
from tests.grading.test_grader import (
    CELL_TIMEOUT,
    EXPECTED_02,
    EXPECTED_03,
    EXTRA,
    SANDBOX,
    canary_messages,
    planted_canary,
    scores,
)
from tests.lines import lines_for

pytestmark = [pytest.mark.integration, pytest.mark.docker]


@pytest.fixture(scope="module", params=lines_for("full"), ids=lambda line: line.short_id)
def line_brokers(request: pytest.FixtureRequest, line_backends):
    endpoints = line_backends(request.param).start()
    version = Admin(endpoints).overview()["rabbitmq_version"]
    assert version.startswith(f"{request.param.rabbitmq}."), version
    return endpoints, version


@pytest.fixture(scope="module")
def canary(line_brokers):
    """The instructor's queue in '/' that lab 02's vandal attacks (as in test_grader)."""
    with planted_canary(line_brokers[0]) as name:
        yield name


@pytest.mark.parametrize(("lab", "expected"), [("02", EXPECTED_02), ("03", EXPECTED_03)],
                         ids=["lab02", "lab03"])
def test_scores_match_the_process_backend(request, line_brokers, canary, lab, expected,
                                          tmp_path):
    endpoints, version = line_brokers
    request.node.user_properties.append(("rabbitmq_version", version))
    built = submissions.lab02(canary) if lab == "02" else submissions.lab03()
    paths = submissions.write(tmp_path / "in", lab, built)
    gradebook = grade(lab, paths, out=tmp_path / "grades.csv", workers=2,
                      timeout=CELL_TIMEOUT, extra_checks=EXTRA, broker=endpoints,
                      sandbox=SANDBOX)
    assert scores(gradebook) == expected
    left = {v["name"] for v in Admin(endpoints).vhosts()}
    assert not left & {item.vhost for item in gradebook.submissions}
    if lab == "02":  # the vandal's attack on '/' failed here too
        assert canary_messages(endpoints, canary) == 1

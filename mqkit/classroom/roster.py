"""The class list: ``ROSTER.csv`` read, and checked before anything is created.

A roster is a CSV file with a header line that names at least the columns ``id`` and
``name`` (other columns are ignored; a spreadsheet's UTF-8 byte-order mark is fine)::

    id,name,email
    ann,Ann Lee,ann@example.edu
    bo.chen,Bo Chen,bo@example.edu

An id becomes part of a RabbitMQ vhost and user name, a file name and a URL, so it holds
only ASCII letters, digits, ``.``, ``_`` and ``-``, starts with a letter or digit, and has
at most :data:`MAX_ID_LENGTH` characters. Ids are compared without case (``Ann`` and
``ann`` would share a card on a case-insensitive disk). Every problem of a roster is reported
at once, each with its line number, and nothing is created while there is one.

Example:
    >>> [s.id for s in parse_roster(ROSTER_EXAMPLE, "ROSTER.csv")]
    ['ann', 'bo.chen']
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from mqkit.exceptions import ConfigError

#: A roster of two students, as the docs show it.
ROSTER_EXAMPLE = "id,name\nann,Ann Lee\nbo.chen,Bo Chen\n"

#: The longest student id (vhost and user names get a prefix on top).
MAX_ID_LENGTH = 48

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
#: At most this many problems are listed; the count of the rest is given.
_SHOWN_PROBLEMS = 20


@dataclass(frozen=True)
class Student:
    """One student of the roster.

    Attributes:
        id: the short id that names the student's vhost, user and card.
        name: the name shown to the instructor and written on the card.
        line: the roster line it came from (0 when it did not come from a file).
    """

    id: str
    name: str
    line: int = 0


def read_roster(path: str | Path) -> list[Student]:
    """Read and check a roster file.

    Raises:
        ConfigError: the file cannot be read, or the roster has problems (all of them are
            listed, each with its line).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Cannot read the roster {path}: {exc}.",
                          hint="Save the class list as a UTF-8 CSV file with the columns "
                               "id,name.") from None
    return parse_roster(text, str(path))


def parse_roster(text: str, source: str = "roster") -> list[Student]:
    """Check the text of a roster and return its students in file order.

    Args:
        text: the CSV text.
        source: how error messages name the file.

    Raises:
        ConfigError: a missing header or column, or bad, empty or duplicate ids or names.
    """
    text = text.removeprefix("\ufeff")
    reader = csv.reader(io.StringIO(text))
    try:
        # line_num after a row is the line it ends on (a quoted cell may span lines)
        numbered = [(reader.line_num, row) for row in reader if any(c.strip() for c in row)]
    except csv.Error as exc:
        raise ConfigError(f"The roster {source} is not valid CSV near line {reader.line_num}: "
                          f"{exc}.", hint="Save the class list as CSV with the columns "
                                          "id,name.") from None
    if not numbered:
        raise ConfigError(f"The roster {source} is empty.",
                          hint="Write a header line `id,name`, then one line per student.")
    header_line, header = numbered[0]
    columns = [cell.strip().lower() for cell in header]
    missing = [name for name in ("id", "name") if name not in columns]
    if missing:
        raise ConfigError(
            f"The roster {source} line {header_line} is not a header with the columns id and "
            f"name (missing: {', '.join(missing)}; seen: {','.join(header)!r}).",
            hint="Make the first line `id,name` (more columns may follow), e.g.\n"
                 "    id,name\n    ann,Ann Lee")
    id_column, name_column = columns.index("id"), columns.index("name")
    problems: list[str] = []
    students: list[Student] = []
    first_line: dict[str, int] = {}
    for number, row in numbered[1:]:
        student_id = row[id_column].strip() if id_column < len(row) else ""
        name = " ".join(row[name_column].split()) if name_column < len(row) else ""
        problem = _id_problem(student_id) or ("" if name else "the name is empty")
        key = student_id.lower()
        if not problem and key in first_line:
            problem = f"the id {student_id!r} is already used on line {first_line[key]}"
        if problem:
            problems.append(f"line {number}: {problem}")
            continue
        first_line[key] = number
        students.append(Student(student_id, name, number))
    if problems:
        shown = problems[:_SHOWN_PROBLEMS]
        more = len(problems) - len(shown)
        raise ConfigError(
            f"The roster {source} has {len(problems)} problem(s); nothing was created:\n  "
            + "\n  ".join(shown) + (f"\n  ... and {more} more" if more else ""),
            hint="Fix these lines and run the command again. An id holds only letters, "
                 f"digits, '.', '_' and '-' (at most {MAX_ID_LENGTH}, starting with a letter "
                 "or digit) and is unique regardless of case; every student needs a name.")
    if not students:
        raise ConfigError(f"The roster {source} has a header but no students.",
                          hint="Add one line per student below the header: id,name.")
    return students


def _id_problem(student_id: str) -> str:
    """Why ``student_id`` cannot name a vhost, user and file ('' when it can)."""
    if not student_id:
        return "the id is empty"
    if len(student_id) > MAX_ID_LENGTH:
        return f"the id {student_id!r} is longer than {MAX_ID_LENGTH} characters"
    if not _ID.fullmatch(student_id):
        bad = sorted({c for c in student_id if not re.fullmatch(r"[A-Za-z0-9._-]", c)})
        if bad:
            return (f"the id {student_id!r} holds {', '.join(repr(c) for c in bad)}, which a "
                    "vhost, user or file name of mqkit cannot hold")
        return f"the id {student_id!r} must start with a letter or digit"
    return ""


import re
from pathlib import Path

import pytest

from mqkit import exceptions
from mqkit.exceptions import BrokerTimeout, ConfigError, MQKitError


def test_message_and_hint():
    error = ConfigError("what failed", hint="do this")
    assert str(error) == "what failed\nHint: do this"
    assert isinstance(error, ValueError)
    assert isinstance(BrokerTimeout("x"), TimeoutError)


def test_tree_in_docstring_matches_classes():
    drawn = set(re.findall(r"[├└]── (\w+)", exceptions.__doc__ or ""))
    defined = {name for name, obj in vars(exceptions).items()
               if isinstance(obj, type) and issubclass(obj, MQKitError) and obj is not MQKitError}
    assert drawn == defined


# The command line is where output is shown; everything else logs.
LIBRARY_FILES = sorted(p for p in Path(exceptions.__file__).parent.rglob("*.py")
                       if p.name not in ("cli.py", "__main__.py"))


@pytest.mark.parametrize("path", LIBRARY_FILES, ids=lambda p: p.name)
def test_library_never_prints(path):
    assert not re.search(r"^\s*print\(", path.read_text(), re.MULTILINE), path

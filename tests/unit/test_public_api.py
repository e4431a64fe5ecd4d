import mqkit


def test_all_is_sorted_and_exported():
    assert mqkit.__all__ == sorted(mqkit.__all__)
    for name in mqkit.__all__:
        assert getattr(mqkit, name) is not None


def test_public_names_are_documented():
    for name in mqkit.__all__:
        assert getattr(mqkit, name).__doc__, name


def test_no_other_public_names():
    public = {n for n in vars(mqkit) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(mqkit, n)).__name__ == "module"}
    assert public - modules - {"logging"} == set(mqkit.__all__)


def test_the_errors_students_meet_are_exported():
    from mqkit import exceptions

    for name in ("ConnectionLost", "QueueRefused", "InvalidExchangeType", "BrokerRefused",
                 "DuplicateClientId", "AuthenticationError", "BrokerNotRunning"):
        assert getattr(mqkit, name) is getattr(exceptions, name)
    internals = {"ManagedBackend", "BrokerSpec", "BrokerState", "StateStore", "ManagementClient"}
    assert not internals & set(mqkit.__all__)


def test_a_missing_extra_names_the_install_command(monkeypatch):
    import sys

    import pytest

    from mqkit.authoring import render_notebook

    monkeypatch.setitem(sys.modules, "jupytext", None)  # as if not installed
    with pytest.raises(mqkit.MissingDependency) as info:
        render_notebook("# %%\nprint(1)\n", "student")
    assert "pip install 'mqkit[authoring]'" in str(info.value)
    assert isinstance(info.value, ImportError)


def test_a_docker_folder_on_the_path_is_not_the_docker_sdk(monkeypatch, tmp_path):
    # Run from a checkout without the SDK, ``import docker`` finds the repository's docker/
    # folder as a namespace package; the docker backend must say the SDK is missing.
    import sys
    import types

    from mqkit.brokers.docker import DockerBackend
    from mqkit.config import Settings

    folder = types.ModuleType("docker")
    folder.__file__ = None
    monkeypatch.setitem(sys.modules, "docker", folder)
    verdict = DockerBackend(Settings.from_env(env={}, state_dir=tmp_path)).availability()
    assert not verdict.is_available
    assert "'docker', which is not installed" in verdict.reason
    assert "mqkit[docker]" in verdict.hint

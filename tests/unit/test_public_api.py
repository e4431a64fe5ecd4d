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

import pytest

from skyscript_assets.ids import UnsafeIdError, is_safe_segment, validate_drama_id


@pytest.mark.parametrize("name", ["sample-drama", "drama_001", "a", "x" * 64, "love-in-2024"])
def test_valid_drama_ids(name):
    assert validate_drama_id(name) == name


@pytest.mark.parametrize(
    "name, words",
    [
        ("../x", "path separator"),
        ("..", "path separator"),
        ("a/b", "path separator"),
        ("a\\b", "path separator"),
        ("Bad Name", "lowercase slug"),
        ("UPPER", "lowercase slug"),
        ("-leading", "lowercase slug"),
        ("double--dash", "lowercase slug"),
        ("x" * 65, "at most 64"),
        ("", "empty"),
        ("café", "lowercase slug"),
        ("nul\x00byte", "path separator"),
    ],
)
def test_unsafe_drama_ids_are_rejected_with_a_reason(name, words):
    with pytest.raises(UnsafeIdError) as excinfo:
        validate_drama_id(name)
    message = str(excinfo.value)
    assert words in message
    assert "\n" not in message


def test_path_segments():
    assert is_safe_segment("ep01")
    assert not is_safe_segment("..")
    assert not is_safe_segment("a/b")
    assert not is_safe_segment("")

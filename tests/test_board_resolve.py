"""`--board NAME_OR_PATH`: a profile in boards/ or a profile file anywhere, and errors that name
the unknown board, or the file and the field at fault; config values of the wrong type name the
field."""

import re

import pytest

from microrl_host.board.boards import BOARDS_DIR, resolve_board
from microrl_host.mirror.config import TD3Config

GOOD = ('name = "mine"\ndescription = "my board"\nheap_bytes = 65536\nfloat_bits = 32\n'
        'ulab = false\nclock_hz = 1000\n\n[learner]\nbatch_size = 8\nbuffer_capacity = 100\n')


def test_a_name_and_a_path_give_the_same_profile():
    by_name = resolve_board("rp2-pico")
    by_path = resolve_board(str(BOARDS_DIR / "rp2-pico.toml"))
    assert by_name == by_path
    assert (by_name.name, by_name.heap_bytes, by_name.learner["batch_size"]) == ("rp2-pico",
                                                                                196608, 16)


def test_a_profile_file_outside_boards(tmp_path, monkeypatch):
    (tmp_path / "mine.toml").write_text(GOOD)
    monkeypatch.chdir(tmp_path)
    profile = resolve_board("mine.toml")
    assert (profile.name, profile.heap_bytes, profile.float_bits) == ("mine", 65536, 32)
    assert profile.learner == {"batch_size": 8, "buffer_capacity": 100}
    (tmp_path / "noname.toml").write_text(GOOD.replace('name = "mine"\n', ""))
    assert resolve_board("./noname.toml").name == "noname"  # the file's stem


def test_a_mistyped_name_lists_the_known_boards():
    with pytest.raises(ValueError) as e:
        resolve_board("rp2-pcio")
    assert str(e.value).startswith("unknown board 'rp2-pcio'; known boards: esp32, ")
    assert "rp2-pico" in str(e.value) and "path of a .toml profile file" in str(e.value)
    with pytest.raises(ValueError, match="^board profile file nowhere/x.toml not found$"):
        resolve_board("nowhere/x.toml")


def test_a_profile_file_name_that_is_in_boards_only(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=re.escape("board profile file rp2-pico.toml not found "
                                                   "(boards/ has one: --board rp2-pico)")):
        resolve_board("rp2-pico.toml")


@pytest.mark.parametrize("change, message", [
    (("heap_bytes = 65536", "heap_byte = 65536"),
     "unknown field 'heap_byte' (did you mean 'heap_bytes'?)"),
    (("heap_bytes = 65536", "heap_bytes = \"64k\""), "heap_bytes must be an integer, got '64k'"),
    (("heap_bytes = 65536", "heap_bytes = -1"), "heap_bytes must be > 0, got -1"),
    (("ulab = false", "ulab = 0"), "ulab must be true or false, got 0"),
    (("float_bits = 32", "float_bits = 16"), "float_bits must be 32 or 64, got 16"),
    (("clock_hz = 1000\n", ""), "lacks the field clock_hz"),
    (("batch_size = 8", "batchsize = 8"), "[learner]: unknown TD3Config field 'batchsize'"),
    (("batch_size = 8", "gamma = [1]"), "[learner]: gamma must be a number, got [1]"),
    (("ulab = false", "ulab = flase"), "not valid TOML: Invalid value (at line 5, column 8)"),
])
def test_a_broken_profile_file_names_the_file_and_the_field(tmp_path, change, message):
    path = tmp_path / "mine.toml"
    path.write_text(GOOD.replace(*change))
    with pytest.raises(ValueError) as e:
        resolve_board(str(path))
    assert str(e.value) == "board profile %s: %s" % (path, message)


def test_a_bad_timing_field_names_the_file(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(GOOD.replace("clock_hz = 1000", 'clock_hz = 1000\ncpi = [1.5]\n'
                                 'cpi_source = "x"'))
    with pytest.raises(ValueError, match=re.escape("board profile mine: cpi must be [low, high], "
                                                   "two numbers, got [1.5] (in %s)" % path)):
        resolve_board(str(path))


@pytest.mark.parametrize("fields, message", [
    ({"gamma": [1]}, "gamma must be a number, got [1]"),
    ({"tau": "fast"}, "tau must be a number, got 'fast'"),
    ({"actor_lr": True}, "actor_lr must be a number, got True"),
    ({"replay": 3}, "replay must be a string, got 3"),
    ({"actor_hidden": 8}, "actor_hidden must be a non-empty list of positive ints, got 8"),
])
def test_config_values_of_the_wrong_type_name_the_field(fields, message):
    with pytest.raises(ValueError) as e:
        TD3Config.from_dict(fields)
    assert str(e.value) == message

"""Configuration: the documented file equals the defaults; files, environment and bad values."""

from __future__ import annotations

import dataclasses
import grp
from pathlib import Path

import pytest

from agnoshm.config import Config, ConfigError, config_file, load_config, parse_size, read_yaml
from agnoshm.errors import AgnoshmError

DOCUMENTED = Path(__file__).resolve().parents[1] / "config" / "agnoshm.yaml"
FROM_ROS = {"domain_id"}  # read from ROS_DOMAIN_ID, as every ROS 2 program does


@pytest.fixture
def environ(tmp_path):
    """An environment that selects an empty configuration file, so only the test's keys count."""
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    return {"AGNOSHM_CONFIG": str(empty), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}


def write_config(tmp_path, text: str) -> Path:
    path = tmp_path / "agnoshm.yaml"
    path.write_text(text)
    return path


# -- the documented file ----------------------------------------------------------------------------


def test_documented_file_holds_every_setting_but_the_ros_domain():
    keys = set(read_yaml(DOCUMENTED))
    assert keys == {f.name for f in dataclasses.fields(Config)} - FROM_ROS


def test_documented_file_equals_the_dataclass_defaults_key_by_key():
    sut = load_config({"AGNOSHM_CONFIG": str(DOCUMENTED)})
    defaults = Config()
    for key in read_yaml(DOCUMENTED):
        assert getattr(sut, key) == getattr(defaults, key), key
    assert sut == defaults


def test_documented_file_comments_every_key_with_its_environment_variable():
    text = DOCUMENTED.read_text()
    for key in read_yaml(DOCUMENTED):
        assert f"AGNOSHM_{key.upper()}" in text, key


def test_no_file_and_no_variables_give_the_defaults(tmp_path, monkeypatch):
    monkeypatch.setattr(Path, "is_file", lambda self: False)  # ignore /etc/agnoshm on this host
    assert load_config({"XDG_CONFIG_HOME": str(tmp_path)}) == Config()


# -- environment overrides --------------------------------------------------------------------------


OVERRIDES = [  # variable, value, setting, parsed value (each differs from the default)
    ("AGNOSHM_BACKEND", "memfd", "backend", "memfd"),
    ("AGNOSHM_POOL_SIZE", "512M", "pool_size", 512 << 20),
    ("AGNOSHM_POOL_SIZE", "1GiB", "pool_size", 1 << 30),
    ("AGNOSHM_POOL_SIZE", "8388608", "pool_size", 8 << 20),
    ("AGNOSHM_BASE_ADDRESS", "0x200000000000", "base_address", 0x200000000000),
    ("AGNOSHM_MAX_PROCESSES", "16", "max_processes", 16),
    ("AGNOSHM_MAX_TOPICS", "32", "max_topics", 32),
    ("AGNOSHM_MAX_PUBLISHERS", "64", "max_publishers", 64),
    ("AGNOSHM_MAX_SUBSCRIPTIONS", "128", "max_subscriptions", 128),
    ("AGNOSHM_MAX_ENTRIES", "8", "max_entries", 8),
    ("AGNOSHM_MAX_PUBLISHERS_PER_TOPIC", "2", "max_publishers_per_topic", 2),
    ("AGNOSHM_MAX_SUBSCRIPTIONS_PER_TOPIC", "1000", "max_subscriptions_per_topic", 1000),
    ("AGNOSHM_MODE", "0o640", "mode", 0o640),
    ("AGNOSHM_MODE", "0640", "mode", 0o640),
    ("AGNOSHM_MODE", "640", "mode", 0o640),
    ("AGNOSHM_GROUP", "0", "group", 0),
    ("AGNOSHM_GROUP", grp.getgrgid(0).gr_name, "group", 0),
    ("AGNOSHM_BUSY_POLL_US", "100", "busy_poll_us", 100),
    ("AGNOSHM_LINGER_SEC", "0.25", "linger_sec", 0.25),
    ("ROS_DOMAIN_ID", "42", "domain_id", 42),
    ("AGNOSHM_NATIVE", "0", "native", "0"),
    ("AGNOSHM_NATIVE", "1", "native", "1"),
]


@pytest.mark.parametrize("variable,value,key,expected", OVERRIDES)
def test_environment_variable_overrides_one_setting(environ, variable, value, key, expected):
    sut = load_config({**environ, variable: value})
    assert getattr(sut, key) == expected
    others = {f.name for f in dataclasses.fields(Config)} - {key}
    assert all(getattr(sut, k) == getattr(Config(), k) for k in others)


def test_every_setting_has_an_environment_variable():
    assert {key for _, _, key, _ in OVERRIDES} == {f.name for f in dataclasses.fields(Config)}


def test_an_empty_variable_is_ignored(environ):
    assert load_config({**environ, "AGNOSHM_BACKEND": "", "ROS_DOMAIN_ID": ""}) == Config()


def test_environment_wins_over_the_file_and_keywords_win_over_both(tmp_path):
    path = write_config(tmp_path, "max_topics: 7\nmax_entries: 9\nbackend: memfd\n")
    env = {"AGNOSHM_CONFIG": str(path), "AGNOSHM_MAX_ENTRIES": "11", "AGNOSHM_BACKEND": "shm"}
    sut = load_config(env, backend="memfd")
    assert (sut.max_topics, sut.max_entries, sut.backend) == (7, 11, "memfd")


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Config().backend = "memfd"


# -- bad values ------------------------------------------------------------------------------------


@pytest.mark.parametrize("variable,value,named", [
    ("AGNOSHM_BACKEND", "posix", "'posix'"),
    ("AGNOSHM_NATIVE", "yes", "AGNOSHM_NATIVE: not auto, 0 or 1: 'yes'"),
    ("AGNOSHM_BACKEND", "MEMFD", "'MEMFD'"),
    ("AGNOSHM_POOL_SIZE", "lots", "'lots'"),
    ("AGNOSHM_POOL_SIZE", "inf", "'inf'"),
    ("AGNOSHM_POOL_SIZE", "3M", str(3 << 20)),
    ("AGNOSHM_POOL_SIZE", "1M", str(1 << 20)),
    ("AGNOSHM_POOL_SIZE", "-4G", str(-4 << 30)),
    ("AGNOSHM_BASE_ADDRESS", "0x1234", "0x1234"),
    ("AGNOSHM_BASE_ADDRESS", "here", "'here'"),
    ("AGNOSHM_BASE_ADDRESS", "0x7fff00000000", "0x7fff00000000"),
    ("AGNOSHM_MAX_PROCESSES", "0", "max_processes must be at least 1, not 0"),
    ("AGNOSHM_MAX_PROCESSES", "5000", "5000"),
    ("AGNOSHM_MAX_TOPICS", "many", "'many'"),
    ("AGNOSHM_MAX_PUBLISHERS", "-1", "max_publishers must be at least 1, not -1"),
    ("AGNOSHM_MAX_SUBSCRIPTIONS", "1.5", "'1.5'"),
    ("AGNOSHM_MAX_ENTRIES", "0", "max_entries must be at least 1, not 0"),
    ("AGNOSHM_MAX_PUBLISHERS_PER_TOPIC", "0", "max_publishers_per_topic must be 1..65535, not 0"),
    ("AGNOSHM_MAX_SUBSCRIPTIONS_PER_TOPIC", "65536",
     "max_subscriptions_per_topic must be 1..65535, not 65536"),
    ("AGNOSHM_MODE", "rw-------", "'rw-------'"),
    ("AGNOSHM_MODE", "0o1777", "0o1777"),
    ("AGNOSHM_MODE", "-1", "-0o1"),
    ("AGNOSHM_GROUP", "agnoshm-no-such-group", "'agnoshm-no-such-group'"),
    ("AGNOSHM_BUSY_POLL_US", "fast", "'fast'"),
    ("AGNOSHM_BUSY_POLL_US", "-5", "busy_poll_us must be >= 0, not -5"),
    ("AGNOSHM_LINGER_SEC", "a while", "'a while'"),
    ("AGNOSHM_LINGER_SEC", "-1", "-1"),
    ("AGNOSHM_LINGER_SEC", "nan", "nan"),
    ("ROS_DOMAIN_ID", "-1", "ROS_DOMAIN_ID must be a non-negative integer, not -1"),
    ("ROS_DOMAIN_ID", "zero", "ROS_DOMAIN_ID='zero' is not an integer: set it to a ROS domain "
                              "number, an integer 0 or above"),
])
def test_bad_environment_value_raises_config_error_naming_it(environ, variable, value, named):
    with pytest.raises(ConfigError) as info:
        load_config({**environ, variable: value})
    assert isinstance(info.value, AgnoshmError) and isinstance(info.value, ValueError)
    assert named in str(info.value)
    setting = variable.removeprefix("AGNOSHM_").lower()
    assert variable in str(info.value) or setting in str(info.value), info.value


@pytest.mark.parametrize("text,named", [
    ("backend: 5\n", "'5'"),
    ("linger_sec: soon\n", "soon"),
    ("pool_size: [1, 2]\n", "[1, 2]"),
    ("mode: 600\n", "0o1130"),  # a decimal 600 is not 0o600: refused, never misread
    ("max_topics: {a: 1}\n", "{'a': 1}"),
])
def test_bad_file_value_raises_config_error_naming_it(tmp_path, text, named):
    path = write_config(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config({"AGNOSHM_CONFIG": str(path)})
    assert named in str(info.value)


def test_octal_mode_in_the_file_is_read_as_octal(tmp_path):
    for text in ("mode: 0o640\n", "mode: 0640\n", "mode: '640'\n"):
        path = write_config(tmp_path, text)
        assert load_config({"AGNOSHM_CONFIG": str(path)}).mode == 0o640, text


def test_unknown_setting_in_the_file_raises_config_error_naming_it(tmp_path):
    path = write_config(tmp_path, "pool_sise: 4G\n")
    with pytest.raises(ConfigError, match="pool_sise") as info:
        load_config({"AGNOSHM_CONFIG": str(path)})
    assert "pool_size" in str(info.value), "the known settings are listed"


def test_file_that_is_not_yaml_raises_config_error_naming_the_file(tmp_path):
    path = write_config(tmp_path, "backend: [shm\n")
    with pytest.raises(ConfigError, match="not valid YAML") as info:
        load_config({"AGNOSHM_CONFIG": str(path)})
    assert str(path) in str(info.value)


def test_file_that_is_not_a_mapping_raises_config_error(tmp_path):
    path = write_config(tmp_path, "- shm\n- memfd\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config({"AGNOSHM_CONFIG": str(path)})


def test_address_range_past_47_bits_names_the_settings_to_lower():
    with pytest.raises(ConfigError, match="base_address, pool_size or max_processes"):
        Config(pool_size=1 << 40, max_processes=256)


def test_parse_size_reads_suffixes():
    assert [parse_size(v) for v in ("4G", "4g", "512M", "64K", "2MiB", "1T", "65536", 7)] == [
        4 << 30, 4 << 30, 512 << 20, 64 << 10, 2 << 20, 1 << 40, 65536, 7]


# -- lookup order -----------------------------------------------------------------------------------


def test_agnoshm_config_names_the_file_to_read(tmp_path):
    path = write_config(tmp_path, "max_topics: 3\n")
    assert config_file({"AGNOSHM_CONFIG": str(path)}) == path
    assert load_config({"AGNOSHM_CONFIG": str(path)}).max_topics == 3


def test_agnoshm_config_naming_a_missing_file_raises_config_error_naming_it(tmp_path):
    missing = tmp_path / "nowhere.yaml"
    with pytest.raises(ConfigError) as info:
        load_config({"AGNOSHM_CONFIG": str(missing)})
    assert str(missing) in str(info.value)


def test_agnoshm_config_wins_over_the_user_file(tmp_path):
    user = tmp_path / "xdg" / "agnoshm"
    user.mkdir(parents=True)
    (user / "agnoshm.yaml").write_text("max_topics: 5\n")
    chosen = write_config(tmp_path, "max_topics: 6\n")
    env = {"AGNOSHM_CONFIG": str(chosen), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    assert load_config(env).max_topics == 6


def test_user_file_under_xdg_config_home_is_read_without_agnoshm_config(tmp_path):
    user = tmp_path / "xdg" / "agnoshm"
    user.mkdir(parents=True)
    (user / "agnoshm.yaml").write_text("max_topics: 5\n")
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    assert config_file(env) == user / "agnoshm.yaml"
    assert load_config(env).max_topics == 5

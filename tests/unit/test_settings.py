"""Settings.from_env: defaults, CASEGRAPH_* parsing, overrides, validation, the API-key
secret and the bind guard (no API key -> loopback only)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from casegraph.errors import ConfigurationError
from casegraph.ops.settings import DEFAULT_MODEL, Secret, Settings, is_loopback

KEY = "s3cret-api-key-0123"


# -- defaults ----------------------------------------------------------------------------
def test_defaults_with_an_empty_environment():
    s = Settings.from_env({})
    assert s.data_dir == Path("./data")
    assert s.host == "127.0.0.1"
    assert s.port == 3300
    assert s.api_key is None
    assert s.embedding_model == DEFAULT_MODEL == "all-MiniLM-L6-v2"
    assert s.spacy_model is None
    assert s.buffer_pool_mb == 384
    assert s.checkpoint_wal_mb == 32
    assert s.max_content_chars == 20_000
    assert s.max_batch_size == 1_000
    assert s.max_top_k == 100
    assert s.recency_half_life_days == 30.0
    assert s.vector_save_interval_s == 30.0
    assert s.log_level == "INFO"


def test_defaults_equal_the_dataclass_defaults():
    assert Settings.from_env({}) == Settings()


def test_unrelated_variables_are_ignored():
    env = {"PORT": "1", "CASEGRAPH": "x", "casegraph_port": "2", "HOME": "/root"}
    assert Settings.from_env(env) == Settings()


def test_settings_are_frozen():
    s = Settings.from_env({})
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.port = 1  # type: ignore[misc]


# -- environment parsing -----------------------------------------------------------------
def test_every_variable_is_parsed_to_its_type():
    env = {
        "CASEGRAPH_DATA_DIR": "/srv/casegraph",
        "CASEGRAPH_HOST": "10.1.2.3",
        "CASEGRAPH_PORT": "8080",
        "CASEGRAPH_API_KEY": KEY,
        "CASEGRAPH_EMBEDDING_MODEL": "/models/mini",
        "CASEGRAPH_SPACY_MODEL": "blank",
        "CASEGRAPH_BUFFER_POOL_MB": "128",
        "CASEGRAPH_CHECKPOINT_WAL_MB": "48",
        "CASEGRAPH_MAX_CONTENT_CHARS": "5000",
        "CASEGRAPH_MAX_BATCH_SIZE": "50",
        "CASEGRAPH_MAX_TOP_K": "25",
        "CASEGRAPH_RECENCY_HALF_LIFE_DAYS": "7.5",
        "CASEGRAPH_VECTOR_SAVE_INTERVAL_S": "2.25",
        "CASEGRAPH_LOG_LEVEL": "DEBUG",
    }
    s = Settings.from_env(env)
    assert s.data_dir == Path("/srv/casegraph") and isinstance(s.data_dir, Path)
    assert s.host == "10.1.2.3"
    assert s.port == 8080 and type(s.port) is int
    assert isinstance(s.api_key, Secret) and s.api_key == KEY
    assert s.embedding_model == "/models/mini"
    assert s.spacy_model == "blank"
    assert s.buffer_pool_mb == 128 and type(s.buffer_pool_mb) is int
    assert s.checkpoint_wal_mb == 48 and type(s.checkpoint_wal_mb) is int
    assert s.max_content_chars == 5000 and type(s.max_content_chars) is int
    assert s.max_batch_size == 50 and type(s.max_batch_size) is int
    assert s.max_top_k == 25 and type(s.max_top_k) is int
    assert s.recency_half_life_days == 7.5 and type(s.recency_half_life_days) is float
    assert s.vector_save_interval_s == 2.25 and type(s.vector_save_interval_s) is float
    assert s.log_level == "DEBUG"


def test_float_settings_accept_integer_text():
    s = Settings.from_env({"CASEGRAPH_RECENCY_HALF_LIFE_DAYS": "14"})
    assert s.recency_half_life_days == 14.0 and type(s.recency_half_life_days) is float


def test_relative_data_dir_stays_a_path():
    s = Settings.from_env({"CASEGRAPH_DATA_DIR": "relative/dir"})
    assert s.data_dir == Path("relative/dir")


def test_surrounding_whitespace_in_numbers_is_tolerated():
    assert Settings.from_env({"CASEGRAPH_PORT": " 8081 "}).port == 8081


def test_empty_variables_mean_unset():
    env = {"CASEGRAPH_PORT": "", "CASEGRAPH_API_KEY": "", "CASEGRAPH_HOST": ""}
    s = Settings.from_env(env)
    assert s.port == 3300 and s.api_key is None and s.host == "127.0.0.1"


def test_reads_os_environ_when_no_mapping_is_given(monkeypatch):
    monkeypatch.setenv("CASEGRAPH_PORT", "4455")
    monkeypatch.setenv("CASEGRAPH_DATA_DIR", "/tmp/cg-env")
    s = Settings.from_env()
    assert s.port == 4455
    assert s.data_dir == Path("/tmp/cg-env")


def test_an_explicit_mapping_ignores_os_environ(monkeypatch):
    monkeypatch.setenv("CASEGRAPH_PORT", "4455")
    assert Settings.from_env({}).port == 3300


# -- overrides ---------------------------------------------------------------------------
def test_overrides_beat_the_environment():
    env = {"CASEGRAPH_PORT": "8080", "CASEGRAPH_HOST": "10.0.0.1", "CASEGRAPH_MAX_TOP_K": "9"}
    s = Settings.from_env(env, port=9090, host="127.0.0.1")
    assert s.port == 9090
    assert s.host == "127.0.0.1"
    assert s.max_top_k == 9  # not overridden: the environment value stays


def test_none_overrides_do_not_clobber_the_environment():
    # The CLI passes None for flags the user did not give.
    s = Settings.from_env({"CASEGRAPH_PORT": "8080"}, port=None, data_dir=None)
    assert s.port == 8080
    assert s.data_dir == Path("./data")


def test_string_overrides_become_path_and_secret():
    s = Settings.from_env({}, data_dir="/var/lib/cg", api_key=KEY)
    assert isinstance(s.data_dir, Path) and s.data_dir == Path("/var/lib/cg")
    assert isinstance(s.api_key, Secret) and s.api_key == KEY


def test_an_override_replaces_an_invalid_environment_value():
    # The override wins before validation, so a bad env value it replaces is irrelevant...
    s = Settings.from_env({"CASEGRAPH_BUFFER_POOL_MB": "8"}, buffer_pool_mb=64)
    assert s.buffer_pool_mb == 64


def test_overrides_are_validated_too():
    with pytest.raises(ConfigurationError):
        Settings.from_env({}, port=0)


# -- bad values --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("PORT", "abc"),
        ("PORT", "80.5"),
        ("BUFFER_POOL_MB", "lots"),
        ("CHECKPOINT_WAL_MB", "big"),
        ("MAX_CONTENT_CHARS", "1e3"),
        ("MAX_BATCH_SIZE", "ten"),
        ("MAX_TOP_K", "5x"),
        ("RECENCY_HALF_LIFE_DAYS", "a month"),
        ("VECTOR_SAVE_INTERVAL_S", "soon"),
    ],
)
def test_unparseable_numbers_raise_configuration_error(name, raw):
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env({f"CASEGRAPH_{name}": raw})
    assert info.value.code == "CONFIGURATION_ERROR"
    assert f"CASEGRAPH_{name}" in info.value.message
    assert raw in info.value.message


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("PORT", "0"),
        ("PORT", "65536"),
        ("PORT", "-1"),
        ("BUFFER_POOL_MB", "15"),
        ("CHECKPOINT_WAL_MB", "0"),
        ("RECENCY_HALF_LIFE_DAYS", "0"),
        ("RECENCY_HALF_LIFE_DAYS", "-3"),
        ("API_KEY", "short"),
        ("API_KEY", "1234567"),
    ],
)
def test_out_of_range_values_raise_configuration_error(name, raw):
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env({f"CASEGRAPH_{name}": raw})
    assert info.value.code == "CONFIGURATION_ERROR"


@pytest.mark.parametrize(("name", "raw"), [("PORT", "1"), ("PORT", "65535"), ("BUFFER_POOL_MB", "16"), ("CHECKPOINT_WAL_MB", "1")])
def test_boundary_values_are_accepted(name, raw):
    s = Settings.from_env({f"CASEGRAPH_{name}": raw})
    assert getattr(s, name.lower()) == int(raw)


def test_an_api_key_of_eight_characters_is_accepted():
    assert Settings.from_env({"CASEGRAPH_API_KEY": "12345678"}).api_key == "12345678"


# Regression: validate() used to accept these (NaN half-life -> NaN scores; limits < 1 -> every
# store/recall refused at run time instead of at start-up).
@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("RECENCY_HALF_LIFE_DAYS", "nan"),
        ("RECENCY_HALF_LIFE_DAYS", "inf"),
        ("VECTOR_SAVE_INTERVAL_S", "nan"),
        ("VECTOR_SAVE_INTERVAL_S", "0"),
        ("VECTOR_SAVE_INTERVAL_S", "-5"),
        ("MAX_TOP_K", "0"),
        ("MAX_BATCH_SIZE", "0"),
        ("MAX_BATCH_SIZE", "-1"),
        ("MAX_CONTENT_CHARS", "0"),
    ],
)
def test_nonsensical_limits_are_refused(name, raw):
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env({f"CASEGRAPH_{name}": raw})
    assert name.lower() in info.value.message


# -- the API key -------------------------------------------------------------------------
def test_api_key_is_a_secret_whose_repr_hides_it():
    s = Settings.from_env({"CASEGRAPH_API_KEY": KEY})
    assert isinstance(s.api_key, Secret)
    assert KEY not in repr(s.api_key)
    assert "*" in repr(s.api_key)
    assert KEY not in repr(s)
    assert KEY not in f"{s!r}"
    assert KEY not in repr([s.api_key])  # containers use repr too
    # ...while it still works as the string it is (header comparison).
    assert s.api_key == KEY
    assert str(s.api_key) == KEY


def test_settings_repr_omits_the_api_key_field():
    s = Settings.from_env({}, api_key=KEY)
    assert "api_key" not in repr(s)


# -- bind guard --------------------------------------------------------------------------
@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.53", "::1", "localhost", "localhost.localdomain"])
def test_loopback_binds_are_allowed_without_a_key(host):
    s = Settings.from_env({"CASEGRAPH_HOST": host})
    s.check_bind_allowed()  # does not raise
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "10.0.0.7", "172.16.5.4", "casegraph.example.com"])
def test_non_loopback_binds_are_refused_without_a_key(host):
    s = Settings.from_env({"CASEGRAPH_HOST": host})
    with pytest.raises(ConfigurationError) as info:
        s.check_bind_allowed()
    assert host in info.value.message
    assert "CASEGRAPH_API_KEY" in info.value.message
    assert info.value.code == "CONFIGURATION_ERROR"


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "127.0.0.1"])
def test_any_bind_is_allowed_with_a_key(host):
    s = Settings.from_env({"CASEGRAPH_HOST": host, "CASEGRAPH_API_KEY": KEY})
    s.check_bind_allowed()  # does not raise


def test_bind_guard_uses_the_overridden_host():
    s = Settings.from_env({"CASEGRAPH_HOST": "127.0.0.1"}, host="0.0.0.0")
    with pytest.raises(ConfigurationError):
        s.check_bind_allowed()


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("127.255.255.254", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.0.1", False),
        ("8.8.8.8", False),
        ("fe80::1", False),
        ("myhost", False),
        ("", False),
        ("127.0.0.1.evil.com", False),
    ],
)
def test_is_loopback(host, expected):
    assert is_loopback(host) is expected

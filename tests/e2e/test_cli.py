"""The `casegraph` command line: argument handling and the loopback-only rule."""

from __future__ import annotations

import subprocess
import sys

import pytest
from casegraph.ops.cli import build_parser, main


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "casegraph.ops.cli", *args], capture_output=True, text=True, timeout=120, env=env
    )


def test_serve_refuses_a_public_address_without_an_api_key(tmp_path, monkeypatch):
    monkeypatch.delenv("CASEGRAPH_API_KEY", raising=False)
    code = main(["serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path / "d")])
    assert code == 2
    assert not (tmp_path / "d").exists()  # refused before anything was opened


def test_bad_settings_exit_with_a_message(tmp_path):
    result = run_cli("serve", "--port", "70000", "--data-dir", str(tmp_path / "d"))
    assert result.returncode == 2
    assert "port must be 1..65535" in result.stderr


def test_parser_defaults_come_from_settings_not_flags():
    args = build_parser().parse_args(["serve"])
    assert args.host is None and args.port is None and args.data_dir is None


def test_version_flag(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("casegraph ")

"""The ``enos-simulator`` command line and ``make simulator``, run as real processes."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from enos_pulumi.simulator.__main__ import main as cli_main
from tests.support.fixtures_simulator import LIST_PATH, SimApi

pytestmark = pytest.mark.slow  # starts provider hosts or plugins, or runs the hostile suites

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_KEY, DEMO_SECRET, DEMO_ORG = "demo-access-key", "demo-secret-key", "o-demo"  # simulator-only values
TIMESTAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


@contextmanager
def running(command: list[str], cwd: Path) -> Iterator[subprocess.Popen[str]]:
    """A process in a session of its own (so SIGTERM reaches make's child too), stopped at the end."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=cwd,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()


def stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    os.killpg(proc.pid, signal.SIGTERM)
    # Generous: under a loaded CI machine make and the simulator may take a while to wind down.
    return proc.communicate(timeout=30)


def test_cli_serves_logs_and_stops_on_sigterm(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "enos_pulumi.simulator", "--fault", "status=503,op=list,count=1"]
    with running(command, tmp_path) as proc:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("EnOS simulator listening on http://127.0.0.1:")
        base = line.rsplit(" ", 1)[1]
        api = SimApi(base, key=DEMO_KEY, secret=DEMO_SECRET)
        token_body = api.token_body()
        token = api.post_token(token_body).json()
        assert token["status"] == 0
        api._token = token["data"]["accessToken"]
        assert api.call("GET", LIST_PATH, [("orgId", DEMO_ORG)]).status_code == 503  # the --fault
        assert api.state("delete", "inv01", "INV.Temp", pipeline="pl-demo-paused", org=DEMO_ORG).json()[
            "data"
        ]
        api.close()
        _, err = stop(proc)
    assert proc.returncode == 0
    token_lines = [ln for ln in err.splitlines() if " token " in ln]
    assert len(token_lines) == 1
    assert re.match(
        f"{TIMESTAMP} POST token /apim-token-service/v2.0/token/get -> 200 code=0 requestId=", token_lines[0]
    )
    [delete] = [ln for ln in err.splitlines() if " delete " in ln]
    assert re.match(
        f"{TIMESTAMP} POST delete /streaming/v2.0/stage-state org=o-demo pipeline=pl-demo-paused[(]PAUSED[)] "
        "stage=FixedTimeWindowAggregator_1 -> 200 code=0 requestId=[0-9a-f]{32} pairs=1x1 ",
        delete,
    )
    assert "fault=status" in err and DEMO_KEY in err
    for secret in (DEMO_SECRET, token["data"]["accessToken"], token_body["encryption"]):
        assert secret not in err


def test_cli_prints_the_export_line_to_paste(tmp_path: Path) -> None:
    with running(
        [sys.executable, "-m", "enos_pulumi.simulator", "--quiet", "--auth", "bearer"], tmp_path
    ) as proc:
        assert proc.stdout is not None
        base = proc.stdout.readline().strip().rsplit(" ", 1)[1]
        assert proc.stdout.readline().startswith("# ")
        export = proc.stdout.readline().strip()
        stop(proc)
    assert export == (
        f"export ENOS_API_GATEWAY={base} ENOS_ACCESS_KEY={DEMO_KEY} ENOS_SECRET_KEY={DEMO_SECRET} "
        f"ENOS_ORG_ID={DEMO_ORG} ENOS_AUTH_SCHEME=bearer"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_simulator_listens_on_the_given_port() -> None:
    port = free_port()
    # -o: do not (re)build the venv stamp; PY: the interpreter running these tests.
    command = ["make", "-s", "-o", ".venv/.installed", "simulator", f"PORT={port}", f"PY={sys.executable}"]
    with running(command, REPO_ROOT) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == f"EnOS simulator listening on http://127.0.0.1:{port}"
        stop(proc)


def test_help_describes_the_seed_format_and_shows_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for expected in (
        "Seed format",
        "access_key",
        "secret_key",
        "{prefix, count, start, width}",
        "stage instance name",
        "--token-lifetime S    token lifetime (s) (default: 7200.0)",
        "(default: 100000)",
        "--pause-seconds",
        "apim-signature,bearer,any",
        "no-effect",
        "Content-Type: application/json",
    ):
        assert expected in text, expected


def refused(args: list[str], tmp_path: Path) -> str:
    """Run the CLI expecting it to refuse ``args`` (exit 2); its stderr. In a process of its own with a
    time bound: a CLI that accepted them would serve until stopped."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "enos_pulumi.simulator", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2, done
    return done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fault", "explode"], "unknown fault kind 'explode'"),
        (["--fault", "bogus=1"], "unknown fault kind 'bogus'"),
        (["--fault", "drop=3"], "fault 'drop' takes no value"),
        (["--fault", "latency=inf"], "finite"),
        (["--pause-seconds", "nan"], "pause_seconds"),
        (["--request-timeout", "0"], "request_timeout"),
        (["--token-lifetime", "-5"], "token_lifetime"),
        (["--auth", "basic"], "invalid choice: 'basic'"),
    ],
)
def test_cli_refuses_bad_faults_and_settings(args: list[str], message: str, tmp_path: Path) -> None:
    assert message in refused(args, tmp_path)


def test_cli_rejects_a_missing_seed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["--seed", str(tmp_path / "nope.yaml")]) == 2
    assert "cannot read seed file" in capsys.readouterr().err


def test_cli_bounds_the_request_log(tmp_path: Path) -> None:
    assert "request_log_limit" in refused(["--request-log-limit", "0"], tmp_path)
    command = [sys.executable, "-m", "enos_pulumi.simulator", "--quiet", "--request-log-limit", "2"]
    with running(command, tmp_path) as proc:
        assert proc.stdout is not None
        base = proc.stdout.readline().strip().rsplit(" ", 1)[1]
        api = SimApi(base, key=DEMO_KEY, secret=DEMO_SECRET)
        try:
            sent = [api.call("GET", LIST_PATH, [("orgId", DEMO_ORG)]).json()["requestId"] for _ in range(3)]
            logged = api.session.get(base + "/__admin/requests", timeout=5).json()
        finally:
            api.close()
        stop(proc)
    assert [e["request_id"] for e in logged["requests"]] == sent[1:]
    assert (logged["limit"], logged["dropped"]) == (2, 2)  # the token request and the first list

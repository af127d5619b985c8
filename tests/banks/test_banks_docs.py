"""docs/banks.md's curl walk-through works as written against the demo data (both
databases): the shell block is read from the markdown and each curl command is
replayed through the test client, `$(... | jq -r EXPR)` captures included."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from qinqing.entrypoints import demo
from qinqing.runtime import Runtime

DOC = Path(__file__).resolve().parents[2] / "docs" / "banks.md"
MARKER = "<!-- walkthrough"
ORIGIN = "http://127.0.0.1:8000"


def walkthrough() -> list[tuple[str, str]]:
    """(comment, command) pairs of the marked ```sh block, continuation lines joined."""
    text = DOC.read_text("utf-8")
    block = text[text.index(MARKER) :].split("```sh\n", 1)[1].split("\n```", 1)[0]
    steps, comment, pending = [], "", ""
    for line in block.splitlines():
        if pending or not line.startswith("#"):
            pending += line.rstrip("\\").rstrip() + " " if line.endswith("\\") else line
            if line.endswith("\\"):
                continue
            if pending.strip():
                steps.append((comment, pending.strip()))
            pending = ""
        else:
            comment = line
    return steps


def jq(expr: str, data: Any) -> list[Any]:
    """The jq subset the walk-through uses: paths, `[]`, `[n]`, pipes, select(.a == "b")."""
    stream = [data]
    for stage in (s.strip() for s in expr.split("|")):
        m = re.fullmatch(r'select\((\.[\w.]+) == "(.*)"\)', stage)
        if m:
            stream = [v for v in stream if jq(m.group(1), v) == [m.group(2)]]
            continue
        if stage.startswith("{"):
            stream = [{"object": v} for v in stream]  # a projection: shown, never captured
            continue
        for part in re.findall(r"\.(\w+)|\[(\d*)\]", stage):
            key, index = part
            if key:
                stream = [v[key] for v in stream]
            elif index:
                stream = [v[int(index)] for v in stream]
            else:
                stream = [item for v in stream for item in v]
    return stream


def run_curl(client: TestClient, argv: list[str]) -> Any:
    method, headers, data, url = None, {}, [], None
    args = iter(argv[1:])
    for arg in args:
        if arg in ("-s", "-sS"):
            continue
        if arg == "-X":
            method = next(args)
        elif arg == "-H":
            name, _, value = next(args).partition(":")
            headers[name.strip()] = value.strip()
        elif arg == "-d":
            data.append(next(args))
        elif arg.startswith("-"):
            raise AssertionError(f"curl option not understood by the test: {arg}")
        else:
            url = arg
    assert url and url.startswith(ORIGIN), url
    method = method or ("POST" if data else "GET")
    content = None
    if data:
        if headers.get("Content-Type") == "application/json":
            content = data[0].encode()
        else:
            content = "&".join(data).encode()
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
    return client.request(method, url[len(ORIGIN) :], headers=headers, content=content)


def test_the_walkthrough_works_against_the_demo(rt: Runtime, client: TestClient) -> None:
    demo.load(rt)
    env: dict[str, str] = {}
    ran = 0
    for comment, command in walkthrough():
        command = re.sub(
            r"\$\{?(\w+)\}?",
            lambda m: env[m.group(1)] if m.group(1) in env else m.group(0),
            command,
        )
        capture = re.fullmatch(r"(\w+)=\$\((.*)\)", command)
        assign = re.fullmatch(r"(\w+)=(\S+)", command)
        if assign and not capture:
            env[assign.group(1)] = assign.group(2)
            continue
        pipeline = capture.group(2) if capture else command
        source, _, jq_part = pipeline.partition("| jq")
        tail = re.fullmatch(r"tail -n 1 qinqing-data/([\w.-]+)\s*", source)
        if tail:
            # The demo's data directory: the last line the simulated SMS provider wrote.
            assert capture, command
            lines = (rt.settings.data_dir / tail.group(1)).read_text("utf-8").splitlines()
            env[capture.group(1)] = str(jq(shlex.split(jq_part)[-1], json.loads(lines[-1]))[0])
            continue
        r = run_curl(client, shlex.split(source))
        ran += 1
        expected = re.search(r"HTTP (\d{3})", comment)
        if expected:
            assert r.status_code == int(expected.group(1)), (comment, r.text)
            code = re.search(r"HTTP \d{3} ([A-Z_]+)", comment)
            if code:
                assert r.json()["code"] == code.group(1), (comment, r.text)
        else:
            assert 200 <= r.status_code < 300, (comment, r.status_code, r.text)
        if capture:
            jq_argv = shlex.split(jq_part)
            expr = jq_argv[-1]
            values = jq(expr, r.json())
            assert values and values[0] not in (None, ""), (comment, r.text)
            env[capture.group(1)] = str(values[0])
        if "UNSETTLED_PAYMENTS" in comment:
            assert [b["code"] for b in r.json()["blockers"]] == ["UNSETTLED_PAYMENTS"]
    assert ran >= 15
    assert env["CODE"].isdigit()
    # What the walk-through claims in prose happened.
    assert (
        json.loads(
            client.get(
                f"/api/v1/unbind-requests/{env['REQUEST']}",
                headers={"Authorization": f"Bearer {env['TOKEN']}"},
            ).text
        )["channel"]
        == "bank"
    )


def test_the_demo_prints_the_bank_credentials_the_walkthrough_uses() -> None:
    text = DOC.read_text("utf-8")
    rows = {(r[1], r[2]) for r in demo.logins()}
    assert ("qq_demo_bank", "demo-bank-secret-2026") in rows
    assert (demo.DEMO_WEBHOOK_URL, demo.DEMO_WEBHOOK_SECRET) in rows
    assert "demo-bank-secret-2026" in text and demo.DEMO_WEBHOOK_SECRET in text

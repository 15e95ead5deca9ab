"""End to end, a server is a stranger: answers that never end, inflate, trickle, repeat
themselves or carry terminal escapes. ``archiver run`` in a subprocess against a
scripted server on a loopback socket."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from archiver.cxone import wire
from archiver.simulator import Faults
from tests.cxone.server import FakeCxone, Reply, Seen, attempt, fake_env, offset_of
from tests.support import REPO, policy_dict, read_report, run_cli, sim_env, write_policy

BOMBED, HEALTHY = "camp-bombed", "camp-healthy"


@pytest.fixture
def fake() -> Iterator[FakeCxone]:
    server = FakeCxone().start()
    yield server
    server.stop()


def listing(records: list[dict[str, object]]):
    """A responder that pages ``records`` by offset and limit."""

    def answer(seen: Seen) -> Reply:
        offset, limit = offset_of(seen)
        return Reply(200, records[offset : offset + limit])

    return answer


def attempts_path(campaign: str) -> str:
    return wire.ATTEMPTS_PATH.format(campaign_id=campaign)


def archived_ids(fake: FakeCxone) -> Counter[str]:
    calls = [r for r in fake.seen("POST") if r.path.endswith("/contacts/archive")]
    return Counter(item["attemptId"] for r in calls for item in r.json()["items"])


def run_measured(args: list[str], env: dict[str, str], tmp_path: Path) -> tuple[int, str, int]:
    """``archiver ARGS``: its exit code, its stderr and its own peak memory (KiB)."""
    out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "archiver", *args], env=env, cwd=REPO, stdout=stdout, stderr=stderr
        )
    try:
        _, status, usage = os.wait4(proc.pid, 0)  # this child's rusage, not every child's
    finally:
        proc.returncode = 0  # reaped above; keeps Popen from waiting on it again
    return os.waitstatus_to_exitcode(status), err.read_text(), usage.ru_maxrss


def run(tmp_path: Path, fake: FakeCxone, doc: dict, *extra: str, timeout: float = 120):
    policy = write_policy(tmp_path / "p.yaml", doc)
    args = ["run", str(policy), "--state", str(tmp_path / "state"), "--report", str(tmp_path / "r.json")]
    return run_cli([*args, *extra], fake_env(fake), timeout=timeout)


def test_an_answer_that_inflates_to_a_gigabyte_fails_its_campaign_in_bounded_memory(
    tmp_path, fake
):
    # 1 GiB of zeros once inflated, about 1 MB on the wire.
    bomb = gzip.compress(b"\0" * 2**24, compresslevel=9) * 64
    fake.respond("GET", attempts_path(BOMBED), lambda _: Reply(
        200, body=bomb, headers={"Content-Encoding": "gzip"}
    ))
    fake.respond("GET", attempts_path(HEALTHY), listing([attempt(f"h-{n}") for n in range(30)]))
    policy = write_policy(tmp_path / "p.yaml", policy_dict([BOMBED, HEALTHY]))
    args = ["run", str(policy), "--state", str(tmp_path / "s"), "--report", str(tmp_path / "r.json")]
    code, stderr, peak_kib = run_measured(args, fake_env(fake), tmp_path)
    assert code == 1, stderr[-3000:]
    by_id = {c["id"]: c for c in read_report(tmp_path / "r.json")["campaigns"]}
    reason = by_id[BOMBED]["reason"]
    assert by_id[BOMBED]["status"] == "failed"
    assert f"GET {attempts_path(BOMBED)}" in reason and "larger than 10 MiB" in reason
    assert by_id[HEALTHY]["status"] == "done" and by_id[HEALTHY]["archived"] == 30
    # Unbounded, decoding it took gigabytes; the run's peak stays far below that.
    assert peak_kib < 600 * 1024, f"the run's peak memory: {peak_kib / 1024:.0f} MiB"


def test_an_answer_trickled_forever_fails_at_the_calls_deadline(tmp_path, fake):
    def trickle() -> Iterator[bytes]:
        # JSON whitespace, one byte at a time, each well within the read timeout.
        while not fake.stopping.wait(0.2):
            yield b" "

    fake.respond("GET", attempts_path(BOMBED), lambda _: Reply(200, stream=trickle))
    doc = policy_dict([BOMBED])
    doc["connection"].update(timeout_seconds=1, connect_timeout_seconds=1)
    doc["retry"]["max_attempts"] = 2
    started = time.monotonic()
    # Before every call had a deadline, this run never ended.
    result = run(tmp_path, fake, doc, timeout=90)
    assert result.returncode == 1, result.stderr[-3000:]
    [campaign] = read_report(tmp_path / "r.json")["campaigns"]
    assert "no complete answer within 2 s" in campaign["reason"]
    assert len(fake.seen("GET", attempts_path(BOMBED))) >= 2, "a deadline is retried"
    assert time.monotonic() - started < 60


def test_a_listing_that_never_ends_stops_at_the_page_cap(tmp_path, fake):
    def full_page(seen: Seen) -> Reply:
        offset, limit = offset_of(seen)
        return Reply(200, [attempt(f"e-{n}") for n in range(offset, offset + limit)])

    fake.respond("GET", attempts_path(BOMBED), full_page)
    policy = write_policy(tmp_path / "p.yaml", policy_dict([BOMBED]))
    # The cap (twenty million attempts) lowered to 500, so the test reaches it in seconds.
    cap = (
        "import archiver.backends.campaign_archive.listing as s; "
        "s.MAX_ATTEMPTS_PER_CAMPAIGN = 500; "
        "from archiver.__main__ import main; main()"
    )
    result = subprocess.run(
        [sys.executable, "-c", cap, "run", str(policy), "--state", str(tmp_path / "s"),
         "--report", str(tmp_path / "r.json")],
        env=fake_env(fake), capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 1, result.stderr[-3000:]
    [campaign] = read_report(tmp_path / "r.json")["campaigns"]
    assert campaign["status"] == "failed"
    assert "the listing did not end" in campaign["reason"] and "500 attempts" in campaign["reason"]
    assert archived_ids(fake) == Counter(), "nothing of an endless listing is archived"
    offsets = sorted(offset_of(r)[0] for r in fake.seen("GET", attempts_path(BOMBED)))
    assert offsets == list(range(0, 600, 100)), "five full pages, and the sixth that had to end it"


def test_attempt_ids_listed_twice_are_counted_once_and_reported(tmp_path, fake):
    first = [attempt(f"d-{n:02}") for n in range(10)]
    second = [attempt(f"d-{n:02}") for n in range(5, 15)]  # five already listed
    third = [attempt(f"d-{n:02}") for n in range(15, 18)] + [attempt("d-00")]
    pages = {0: first, 10: second, 20: third}
    fake.respond("GET", attempts_path(BOMBED), lambda seen: Reply(200, pages.get(offset_of(seen)[0], [])))
    doc = policy_dict([BOMBED])
    doc["source"]["page_size"] = 10
    result = run(tmp_path, fake, doc)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (
        f"campaign {BOMBED}: the listing returned 6 copy(ies) of attempt ids it had already "
        "listed; each attempt was counted once"
    ) in result.stderr
    [campaign] = read_report(tmp_path / "r.json")["campaigns"]
    assert campaign["listed"] == 18 and campaign["archived"] == 18
    assert archived_ids(fake) == Counter({f"d-{n:02}": 1 for n in range(18)})


def test_terminal_escapes_and_newlines_from_the_server_are_shown_escaped(tmp_path, fake):
    evil_id = "att\x1b]0;owned\x07-1"
    aborting = [attempt("ok-1"), attempt(evil_id, anonymized=False)]  # the reason names the id
    failing = [attempt("h-1"), attempt("odd-1", outcomeCode="WEIRD\x1b[2J\nFORGED skipped line")]
    fake.respond("GET", attempts_path(BOMBED), listing(aborting))
    fake.respond("GET", attempts_path(HEALTHY), listing(failing))
    refusal = {"message": "bad batch\x1b[31m\nFORGED 2099-01-01 INFO all archived"}
    fake.respond(
        "POST", wire.ARCHIVE_PATH.format(campaign_id=HEALTHY), lambda _: Reply(400, refusal)
    )
    doc = policy_dict([BOMBED, HEALTHY])
    doc["filters"][1]["on_violation"] = "abort"
    result = run(tmp_path, fake, doc)
    assert result.returncode == 1, result.stderr[-3000:]
    for stream in (result.stdout, result.stderr):
        assert "\x1b" not in stream and "\x07" not in stream
        assert not any(line.startswith("FORGED") for line in stream.splitlines()), stream
    assert "att\\x1b]0;owned\\x07-1 is not anonymized" in result.stdout
    assert "1 skipped: outcome WEIRD\\x1b[2J\\nFORGED skipped line not approved" in result.stdout
    assert "bad batch\\x1b[31m" in result.stdout and "bad batch\\x1b[31m" in result.stderr
    # The report keeps the server's text as it was: JSON escapes it by itself.
    report = json.loads((tmp_path / "r.json").read_text())
    by_id = {c["id"]: c for c in report["campaigns"]}
    assert evil_id in by_id[BOMBED]["reason"]


@pytest.mark.parametrize("lifetime", ["NaN", "-1", "0"])
def test_a_token_lifetime_that_is_not_a_positive_number_stops_the_run_in_one_line(
    tmp_path, fake, lifetime
):
    body = f'{{"access_token": "tok-opaque-12345", "expires_in": {lifetime}}}'.encode()
    fake.respond("POST", wire.TOKEN_PATH, lambda _: Reply(200, body=body))
    result = run(tmp_path, fake, policy_dict([BOMBED]))
    assert result.returncode == 1, result.stderr[-3000:]
    assert result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if line.startswith("archiver: error:")]
    assert len(errors) == 1 and "token answer is not valid: field `expires_in`" in errors[0]
    assert "Traceback" not in result.stderr
    assert fake.seen("GET") == [], "the token was never used"


def test_a_dialing_campaigns_expected_409s_are_shown_as_such_not_as_errors(tmp_path, start_sim):
    paused, refused = "dddddddd-0000-4000-8000-00000000000a", "dddddddd-0000-4000-8000-00000000000b"
    sim = start_sim(
        Faults(active_campaigns=[paused, refused]),
        campaign_ids=[paused, refused],
        attempts_per_campaign=200,
        seed=4,
    )
    doc = policy_dict([paused, refused])
    doc["campaigns"][1]["on_active"] = "fail"
    policy = write_policy(tmp_path / "p.yaml", doc)
    result = run_cli(
        ["run", str(policy), "--state", str(tmp_path / "s"), "--report", str(tmp_path / "r.json")],
        sim_env(sim),
    )
    assert result.returncode == 1, result.stderr[-3000:]  # on_active: fail fails its campaign
    by_id = {c["id"]: c for c in read_report(tmp_path / "r.json")["campaigns"]}
    expected = by_id[paused]["api"]["endpoints"]["archive"]
    assert expected["statuses"].get("409", 0) >= 1
    assert expected["dialing"] == expected["statuses"]["409"] and expected["errors"] == 0
    assert by_id[paused]["failed"] == 0
    unexpected = by_id[refused]["api"]["endpoints"]["archive"]
    assert unexpected["errors"] >= 1 and unexpected["dialing"] == 0
    n = expected["dialing"]
    assert f"  {paused}: {n} answer(s) 409 dialing (expected" in result.stdout
    assert f"  {refused}: 1 answer(s) 409" not in result.stdout


def test_plan_shows_server_text_escaped_too(tmp_path, fake):
    records = [
        attempt("p-1"),
        attempt("p-2", outcomeCode="[bold]WEIRD\x1b[2J\nFORGED"),
        attempt("p\x1b[31m-3", anonymized=False),
    ]
    fake.respond("GET", attempts_path(BOMBED), listing(records))
    policy = write_policy(tmp_path / "p.yaml", policy_dict([BOMBED]))
    result = run_cli(["plan", str(policy)], fake_env(fake))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "\x1b" not in result.stdout
    assert not any(line.startswith("FORGED") for line in result.stdout.splitlines())
    assert "1 skip: outcome [bold]WEIRD\\x1b[2J\\nFORGED not approved" in result.stdout
    # In the table too, as text: not read as markup, not obeyed.
    assert "│ [bold]WEIRD\\x1b[2J" in result.stdout

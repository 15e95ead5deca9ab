"""An independent strict server written from the contract, standard library only.

It speaks the campaign archive contract as the reference material states it
(`reference/README.md`, table "Its HTTP contract is our default backend", and the
tutorial's "HTTP Request/Response Cycle"), and nothing of the client or of the
project's simulator. It is strict where a real server would be: a body key that is
unknown, missing, snake_case or of the wrong type is a 400, and so is a batch of
more than 200 items; a missing, unknown or expired bearer token is a 401; an archive
call on a campaign that is actively dialing is a 409 until the campaign is PATCHed
to PAUSED. Every archived attempt goes into a ledger with a count, so archiving
twice shows.

Faults are switched by the `Faults` given at start: a share of calls answered 429
(with or without `Retry-After`), a share answered 503, and a token lifetime (the
token stops working after that many seconds, whatever `expires_in` said), latency,
items a batch reports failed (`failedCount`): those stay listed, unarchived, and a
share of archive calls that take effect and whose answer is then lost (a gateway's
502, or the connection closed without an answer). The contract names no idempotency
key, and this server keeps none: an archive call sent twice archives twice.

A test can watch every call as it comes (`StrictServer.on_call`): the hook is called
when a call arrives, before anything is done with it, and again once its answer is
decided, before it is sent (an archive call answered then has taken effect), so a test
can stop its client at an exact point while other calls are in flight. A request whose
body is cut short (its client killed while sending it) is not acted on, not answered
and not logged: it is counted in `torn`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import random
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

APPROVED = ("SURVEY_TAKEN", "NO_ANSWER", "BUSY", "DISCONNECTED")
NOT_APPROVED = ("ANSWERING_MACHINE", "CALLBACK_REQUESTED", "DO_NOT_CALL")
MAX_ITEMS = 200
MAX_LIMIT = 1000

_ATTEMPT_PATH = re.compile(r"^/api/v2/campaigns/([^/]+)/attempts$")
_ARCHIVE_PATH = re.compile(r"^/api/v2/campaigns/([^/]+)/contacts/archive$")
_CAMPAIGN_PATH = re.compile(r"^/api/v2/campaigns/([^/]+)$")

# The tutorial's request body, key by key: nothing else is accepted.
_BATCH_KEYS = {"campaignId": str, "items": list, "forceColdStorage": bool}
_ITEM_KEYS = {
    "contactId": str,
    "attemptId": str,
    "statusMatrix": dict,
    "retentionPeriodDays": int,
    "deleteActive": bool,
}
_MATRIX_KEYS = {
    "outcomeCode": str,
    "disposition": str,
    "callDurationSeconds": int,
    "anonymized": bool,
}


# -- the data set ------------------------------------------------------------------


def make_dataset(
    campaigns: int = 3, attempts: int = 400, seed: int = 20240515
) -> dict[str, list[dict[str, Any]]]:
    """Deterministic campaigns of attempts as the list call answers them."""
    rng = random.Random(seed)
    data: dict[str, list[dict[str, Any]]] = {}
    for c in range(campaigns):
        campaign_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        records = []
        for i in range(attempts):
            roll = rng.random()
            outcome = rng.choice(APPROVED) if roll < 0.7 else rng.choice(NOT_APPROVED)
            record: dict[str, Any] = {
                "id": f"att-{c}-{i:05d}",
                "contactId": f"con-{c}-{rng.randrange(10**8):08d}",
                "outcomeCode": outcome,
                "disposition": rng.choice(("COMPLETED", "ARCHIVED", "CLOSED")),
                "duration": 0 if outcome in ("NO_ANSWER", "BUSY") else rng.randrange(1, 900),
                "anonymized": rng.random() >= 0.06,
            }
            shape = rng.random()
            if shape < 0.3:
                pass  # no retentionDays at all
            elif shape < 0.5:
                record["retentionDays"] = None
            else:
                record["retentionDays"] = rng.choice((30, 90, 180, 400, 1095, 2555, 3650))
            records.append(record)
        # Listed in an order that is not the id order.
        rng.shuffle(records)
        data[campaign_id] = records
    return data


# -- faults and what the server saw ---------------------------------------------


@dataclass
class Faults:
    """What to do wrong, and how often."""

    rate_limit_share: float = 0.0
    retry_after: str | None = None  # the 429's Retry-After header, None: no header
    unavailable_share: float = 0.0
    token_lifetime: float | None = None  # seconds a token works; None: an hour
    advertised_expires_in: int | None = None  # `expires_in` sent; None: the lifetime
    latency: float = 0.0  # seconds every API answer waits
    fail_every: int | None = None  # every Nth item of a batch is not archived (failedCount)
    only: tuple[str, ...] | None = None  # endpoints the shares apply to; None: every one
    # Archive calls that take effect, then lose their answer: "502" (a gateway's) or
    # "drop" (the connection closes unanswered).
    lost_answer_share: float = 0.0
    lost_answer: str = "502"
    seed: int = 7  # shifts which calls are faulted


@dataclass
class Campaign:
    id: str
    records: list[dict[str, Any]]
    dialing: bool = False
    status: str = "ACTIVE"
    patches: list[str] = field(default_factory=list)
    archived_ids: set[str] = field(default_factory=set)

    @property
    def actively_dialing(self) -> bool:
        return self.dialing and self.status == "ACTIVE"


@dataclass
class Logged:
    method: str
    path: str
    endpoint: str
    status: int
    campaign: str | None = None
    detail: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class Arrival:
    """One call as `StrictServer.on_call` sees it.

    ``n`` numbers the calls of its endpoint from 1, in the order they arrived. ``stage``
    is "arrived" (nothing done yet, ``status`` None) or "answering" (the answer is
    decided and not yet sent; ``status`` is what goes out: 0 for a connection closed
    unanswered). ``took_effect``: an archive call whose attempts went into the ledger.
    """

    endpoint: str
    campaign: str | None
    n: int
    stage: str
    status: int | None = None
    took_effect: bool = False


class StrictServer:
    """The server; `start()` binds 127.0.0.1 on a free port."""

    def __init__(
        self,
        dataset: dict[str, list[dict[str, Any]]],
        *,
        client_id: str,
        client_secret: str,
        dialing: tuple[str, ...] = (),
        faults: Faults | None = None,
        webhook_secret: bytes | None = None,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.campaigns = {
            cid: Campaign(cid, records, dialing=cid in dialing) for cid, records in dataset.items()
        }
        self.faults = faults or Faults()
        self.webhook_secret = webhook_secret
        self.lock = threading.Lock()
        self._fault_calls = 0
        self._archive_calls = 0
        self.tokens: dict[str, float] = {}
        self.ledger: Counter[str] = Counter()  # attempt id -> times archived
        self.archived_items: dict[str, dict[str, Any]] = {}  # attempt id -> item as sent
        self.archive_batches: list[dict[str, Any]] = []  # every 200 answer to archive
        self.listed_ids: set[str] = set()  # ids served by list calls since reset_listed()
        self.log: list[Logged] = []
        self.webhooks: list[dict[str, Any]] = []
        self.bad_webhooks: list[str] = []
        self.torn: list[str] = []  # requests whose body was cut short: not acted on
        self._job_ids = itertools.count(1)
        self._arrivals: Counter[str] = Counter()  # endpoint -> calls that arrived
        # Called in the serving thread at each stage of every call (see Arrival), outside
        # the server's lock; None: no one watches.
        self.on_call: Callable[[Arrival], None] | None = None
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- life --------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        assert self._httpd is not None
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> str:
        server = self

        class Handler(_Handler):
            owner = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # -- what tests read ---------------------------------------------------------

    def arrivals(self, endpoint: str) -> int:
        """How many calls to ``endpoint`` have arrived so far (`Arrival.n` of the last)."""
        with self.lock:
            return self._arrivals[endpoint]

    def reset_listed(self) -> None:
        with self.lock:
            self.listed_ids.clear()

    def calls(self, endpoint: str, status: int | None = None) -> list[Logged]:
        with self.lock:
            return [
                e
                for e in self.log
                if e.endpoint == endpoint and (status is None or e.status == status)
            ]

    # -- the calls ---------------------------------------------------------------

    def fault_for(self, endpoint: str) -> tuple[int, dict[str, str]] | None:
        """A fault that answers this call instead of the contract, or None."""
        f = self.faults
        if f.latency:
            time.sleep(f.latency)
        if endpoint == "webhook" or (f.only is not None and endpoint not in f.only):
            return None
        with self.lock:
            # Calls are counted, not drawn at random: the same share of calls is faulted
            # in every run, however the client's threads interleave.
            self._fault_calls += 1
            roll = (self._fault_calls * 0.618033988749895 + self.faults.seed / 97) % 1.0
        if roll < f.rate_limit_share:
            headers = {} if f.retry_after is None else {"Retry-After": f.retry_after}
            return 429, headers
        if roll < f.rate_limit_share + f.unavailable_share:
            return 503, {}
        return None

    def loses_answer(self) -> bool:
        """Whether this archive call, once it took effect, loses its answer."""
        with self.lock:
            self._archive_calls += 1
            roll = (self._archive_calls * 0.754877666246693 + self.faults.seed / 89) % 1.0
        return roll < self.faults.lost_answer_share

    def token(self, form: dict[str, list[str]]) -> tuple[int, Any]:
        expected = {"grant_type", "client_id", "client_secret"}
        if set(form) != expected or any(len(v) != 1 for v in form.values()):
            return 400, {"error": "invalid_request", "fields": sorted(form)}
        if form["grant_type"][0] != "client_credentials":
            return 400, {"error": "unsupported_grant_type"}
        if (form["client_id"][0], form["client_secret"][0]) != (
            self.client_id,
            self.client_secret,
        ):
            return 401, {"error": "invalid_client"}
        lifetime = self.faults.token_lifetime or 3600.0
        expires_in = self.faults.advertised_expires_in or max(1, int(lifetime))
        token = uuid.uuid4().hex
        with self.lock:
            self.tokens[token] = time.monotonic() + lifetime
        return 200, {"access_token": token, "expires_in": expires_in}

    def authorized(self, header: str | None) -> bool:
        if not header or not header.startswith("Bearer "):
            return False
        with self.lock:
            expiry = self.tokens.get(header[len("Bearer ") :])
        return expiry is not None and time.monotonic() < expiry

    def list_attempts(self, campaign: Campaign, query: dict[str, list[str]]) -> tuple[int, Any]:
        if set(query) != {"status", "limit", "offset"} or any(len(v) != 1 for v in query.values()):
            return 400, {"error": f"query must be status, limit, offset; got {sorted(query)}"}
        if query["status"][0] != "completed":
            return 400, {"error": "status must be completed"}
        try:
            limit, offset = int(query["limit"][0]), int(query["offset"][0])
        except ValueError:
            return 400, {"error": "limit and offset must be integers"}
        if not 1 <= limit <= MAX_LIMIT or offset < 0:
            return 400, {"error": f"limit must be 1..{MAX_LIMIT}, offset >= 0"}
        with self.lock:
            # Archived attempts leave the listing, as they leave the dialing lists.
            remaining = [r for r in campaign.records if r["id"] not in campaign.archived_ids]
            page = remaining[offset : offset + limit]
            self.listed_ids.update(r["id"] for r in page)
        return 200, [dict(r) for r in page]

    def patch_campaign(self, campaign: Campaign, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or set(body) != {"status"}:
            return 400, {"error": 'body must be {"status": ...}'}
        if body["status"] not in ("PAUSED", "ACTIVE"):
            return 400, {"error": "status must be PAUSED or ACTIVE"}
        with self.lock:
            campaign.status = body["status"]
            campaign.patches.append(body["status"])
        return 200, {"campaignId": campaign.id, "status": campaign.status}

    def archive(self, campaign: Campaign, body: Any) -> tuple[int, Any]:
        problem = _check_batch(body, campaign.id)
        if problem:
            return 400, {"error": problem}
        by_id = {r["id"]: r for r in campaign.records}
        for n, item in enumerate(body["items"]):
            record = by_id.get(item["attemptId"])
            if record is None:
                return 400, {"error": f"items[{n}].attemptId: no such attempt in campaign"}
            if record["contactId"] != item["contactId"]:
                return 400, {"error": f"items[{n}].contactId is not the attempt's contact"}
        ids = [item["attemptId"] for item in body["items"]]
        if len(set(ids)) != len(ids):
            return 400, {"error": "an attemptId appears twice in one batch"}
        with self.lock:
            if campaign.actively_dialing:
                return 409, {"error": "campaign is actively dialing"}
            every = self.faults.fail_every
            done = [item for n, item in enumerate(body["items"]) if not every or (n + 1) % every]
            for item in done:
                self.ledger[item["attemptId"]] += 1
                self.archived_items[item["attemptId"]] = item
                campaign.archived_ids.add(item["attemptId"])
            ids = [item["attemptId"] for item in done]
            failed = len(body["items"]) - len(done)
            answer = {
                "archivedCount": len(done),
                "failedCount": failed,
                "migrationJobId": f"mig-{next(self._job_ids):06d}",
                "status": "PARTIAL" if failed else "COMPLETED",
                "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            self.archive_batches.append(
                {
                    "campaign": campaign.id,
                    "ids": ids,
                    "forceColdStorage": body["forceColdStorage"],
                    "answer": answer,
                }
            )
        return 200, answer

    def webhook(self, headers: Any, raw: bytes) -> tuple[int, Any]:
        """A data-warehouse receiver checking Standard Webhooks signatures."""
        wid, ts, sig = (
            headers.get(h) for h in ("webhook-id", "webhook-timestamp", "webhook-signature")
        )
        if not (wid and ts and sig) or self.webhook_secret is None:
            with self.lock:
                self.bad_webhooks.append(f"missing headers: {wid!r} {ts!r} {sig!r}")
            return 400, {"error": "missing webhook headers"}
        mac = hmac.new(self.webhook_secret, f"{wid}.{ts}.".encode() + raw, hashlib.sha256)
        expected = "v1," + base64.b64encode(mac.digest()).decode()
        if expected not in sig.split():
            with self.lock:
                self.bad_webhooks.append(f"bad signature on {wid}")
            return 401, {"error": "bad signature"}
        with self.lock:
            self.webhooks.append({"id": wid, "body": json.loads(raw)})
        return 204, None


def _check_type(value: Any, kind: type) -> bool:
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def _check_keys(obj: Any, spec: dict[str, type], where: str) -> str | None:
    if not isinstance(obj, dict):
        return f"{where}: must be an object"
    unknown = sorted(set(obj) - set(spec))
    if unknown:
        return f"{where}: unknown keys {unknown}"
    missing = sorted(set(spec) - set(obj))
    if missing:
        return f"{where}: missing keys {missing}"
    for key, kind in spec.items():
        if not _check_type(obj[key], kind):
            return f"{where}.{key}: must be {kind.__name__}, got {type(obj[key]).__name__}"
    return None


def _check_batch(body: Any, campaign_id: str) -> str | None:
    problem = _check_keys(body, _BATCH_KEYS, "body")
    if problem:
        return problem
    if body["campaignId"] != campaign_id:
        return "body.campaignId differs from the path"
    items = body["items"]
    if not 1 <= len(items) <= MAX_ITEMS:
        return f"items: 1..{MAX_ITEMS} allowed, got {len(items)}"
    for n, item in enumerate(items):
        problem = _check_keys(item, _ITEM_KEYS, f"items[{n}]") or _check_keys(
            item["statusMatrix"], _MATRIX_KEYS, f"items[{n}].statusMatrix"
        )
        if problem:
            return problem
        if not item["attemptId"] or not item["contactId"]:
            return f"items[{n}]: empty id"
        if item["retentionPeriodDays"] < 1:
            return f"items[{n}].retentionPeriodDays must be positive"
    return None


class _Handler(BaseHTTPRequestHandler):
    owner: StrictServer
    protocol_version = "HTTP/1.1"  # keep-alive, as a real server offers
    timeout = 10  # a client that stalls mid-request is dropped
    # Headers and body leave in one write: split writes meet the client's delayed ACK.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        endpoint, campaign_id = _route(method, url.path)
        s = self.owner
        if len(raw) < length:
            # The client went away mid-request (killed): nothing arrived to act on, and
            # there is no one to answer.
            with s.lock:
                s.torn.append(f"{method} {url.path}")
            self.close_connection = True
            return
        with s.lock:
            s._arrivals[endpoint] += 1
            n = s._arrivals[endpoint]
        watch = s.on_call
        if watch is not None:
            watch(Arrival(endpoint, campaign_id, n, "arrived"))
        status, payload, headers = self._answer(method, endpoint, campaign_id, url, raw)
        took_effect = endpoint == "archive" and status == 200
        if took_effect and s.loses_answer():
            drop = s.faults.lost_answer == "drop"
            status, payload, headers = (0, None, {}) if drop else (
                502, {"error": "upstream timed out"}, {})
        with s.lock:
            s.log.append(
                Logged(
                    method,
                    self.path,
                    endpoint,
                    status,
                    campaign_id,
                    detail=payload.get("error", "") if isinstance(payload, dict) else "",
                    headers={k.lower(): v for k, v in self.headers.items()},
                )
            )
        if watch is not None:
            watch(Arrival(endpoint, campaign_id, n, "answering", status, took_effect))
        if status == 0:
            self.close_connection = True  # no answer at all
            return
        self._send(status, payload, headers)

    def _answer(
        self, method: str, endpoint: str, campaign_id: str | None, url: Any, raw: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        s = self.owner
        if endpoint == "unknown":
            return 404, {"error": f"no route for {method} {url.path}"}, {}
        fault = s.fault_for(endpoint)
        if fault is not None:
            status, headers = fault
            return status, {"error": "injected fault"}, headers
        if endpoint == "webhook":
            status, payload = s.webhook(self.headers, raw)
            return status, payload, {}
        if endpoint == "token":
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            if ctype != "application/x-www-form-urlencoded":
                return 400, {"error": f"token form expected, got {ctype!r}"}, {}
            form = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
            status, payload = s.token(form)
            return status, payload, {}
        if not s.authorized(self.headers.get("Authorization")):
            return 401, {"error": "missing, unknown or expired bearer token"}, {}
        campaign = s.campaigns.get(campaign_id or "")
        if campaign is None:
            return 404, {"error": "no such campaign"}, {}
        if endpoint == "list":
            status, payload = s.list_attempts(campaign, parse_qs(url.query, keep_blank_values=True))
            return status, payload, {}
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if ctype != "application/json":
            return 400, {"error": f"JSON body expected, got {ctype!r}"}, {}
        try:
            body = json.loads(raw)
        except ValueError:
            return 400, {"error": "body is not JSON"}, {}
        if endpoint == "patch":
            status, payload = s.patch_campaign(campaign, body)
        else:
            status, payload = s.archive(campaign, body)
        return status, payload, {}

    def _send(self, status: int, payload: Any, headers: dict[str, str]) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        if payload is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def _route(method: str, path: str) -> tuple[str, str | None]:
    if method == "POST" and path == "/oauth/token":
        return "token", None
    if method == "POST" and path == "/hooks/archive-events":
        return "webhook", None
    if method == "GET" and (m := _ATTEMPT_PATH.match(path)):
        return "list", m.group(1)
    if method == "POST" and (m := _ARCHIVE_PATH.match(path)):
        return "archive", m.group(1)
    if method == "PATCH" and (m := _CAMPAIGN_PATH.match(path)):
        return "patch", m.group(1)
    return "unknown", None

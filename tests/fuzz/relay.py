"""What the fuzz suites share: the relay's settings, how to reach every carrier's parser,
what a clear answer is (SPEC §4, §12), and where the relay's log shows a crash.

Every carrier is reachable with a cheap credential: ``generic`` and ``easypost`` sign each
body (the signed path), the others accept unsigned webhooks (``ALLOW_UNSIGNED``), so a
hostile body always gets past authentication to the JSON reader and the adapter.
"""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from app.ingest.carriers import BUILT_IN
from tests.support.relay_process import RelayProcess
from tests.support.signing import easypost_headers, standard_webhooks_headers

ADMIN = "admin-token-fuzz"
HOOK_SECRET = "hook-secret-fuzz"
HOOK_HEADER = "X-Relay-Hook-Token"
GENERIC_SECRET = "generic-secret-fuzz"
EASYPOST_SECRET = "easypost-secret-fuzz"

Signer = Callable[[str, bytes], dict[str, str]]
SIGNED: dict[str, tuple[str, Signer]] = {
    "generic": (GENERIC_SECRET, standard_webhooks_headers),
    "easypost": (EASYPOST_SECRET, easypost_headers),
}
CARRIERS = sorted(BUILT_IN)  # no declared carriers: RELAY_CARRIERS_FILE is not set
UNSIGNED = [name for name in CARRIERS if name not in SIGNED]


def relay_env(vtex_url: str) -> dict[str, str]:
    """Settings under which every route and every carrier's parser can be reached."""
    env = {
        "RELAY_VTEX_BASE_URL": vtex_url,
        "RELAY_VTEX_ACCOUNT": "fuzzstore",
        "RELAY_VTEX_APP_KEY": "vtexappkey-fuzz-KEY",
        "RELAY_VTEX_APP_TOKEN": "vtex-app-token-fuzz",
        "RELAY_ADMIN_TOKEN": ADMIN,
        "RELAY_VTEX_HOOK_SECRET": HOOK_SECRET,
        "RELAY_VTEX_COALESCE_WINDOW": "0.1s",
        "RELAY_CARRIERS__GENERIC__SECRET": GENERIC_SECRET,
        "RELAY_CARRIERS__EASYPOST__SECRET": EASYPOST_SECRET,
    }
    for name in UNSIGNED:
        env[f"RELAY_CARRIERS__{name.upper()}__ALLOW_UNSIGNED"] = "true"
    return env


def webhook_headers(
    carrier: str, body: bytes, content_type: str = "application/json"
) -> dict[str, str]:
    """Headers that get ``body`` past ``carrier``'s authentication."""
    headers: dict[str, str] = {}
    if carrier in SIGNED:
        secret, sign = SIGNED[carrier]
        headers = {k: v for k, v in sign(secret, body).items() if k != "content-type"}
    if content_type:
        headers["content-type"] = content_type
    return headers


def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN}"}


# --- The relay's log -------------------------------------------------------------------------


def log_mark(relay: RelayProcess) -> int:
    """Where the log's last complete line ends now: :func:`log_failures` reads what comes
    after (a line still being written belongs to what comes after, not cut in two)."""
    with relay.log_path.open("rb") as log:
        end = log.seek(0, 2)
        position = end
        while position > 0:
            step = min(position, 65536)
            log.seek(position - step)
            chunk = log.read(step)
            newline = chunk.rfind(b"\n")
            if newline >= 0:
                return position - step + newline + 1
            position -= step
        return 0


def is_failure(line: str) -> bool:
    """A traceback, an error-level line, a failed request, or a line that is not JSON at all
    (SPEC §9: one JSON object a line; a crash printed raw is not)."""
    if not line.strip():
        return False
    if "Traceback" in line:
        return True
    try:
        record = json.loads(line)
    except ValueError:
        return True
    if not isinstance(record, dict):
        return True
    return (
        record.get("level") in ("error", "critical")
        or record.get("event") == "request.failed"
        or "exception" in record
        or "exc_info" in record
    )


def background_failures(relay: RelayProcess) -> list[str]:
    """Failure lines no request explains (the worker's, start-up's, shutdown's): the tests
    report those of their own requests, this is for the rest."""
    found = []
    for line in log_failures(relay, 0):
        record = _record(line) or {}
        during_request = (
            "request_id" in record
            or record.get("event") == "request.failed"
            or "ASGI application" in str(record.get("event"))
        )
        if not during_request:
            found.append(line)
    return found


def _log_since(relay: RelayProcess, since: int) -> str:
    """The complete lines written after ``since``."""
    with relay.log_path.open("rb") as log:
        log.seek(since)
        data = log.read()
    return data[: data.rfind(b"\n") + 1].decode(errors="replace")


def log_failures(relay: RelayProcess, since: int) -> list[str]:
    """The failure lines the relay logged after ``since``."""
    return [line for line in _log_since(relay, since).splitlines() if is_failure(line)]


# The access line (an accepted webhook's own line is its request's last), or uvicorn's line
# for a request it refused before the relay saw it.
_REQUEST_ENDS = (
    '"event": "http.request"',
    '"event": "webhook.accepted"',
    "Invalid HTTP request received",
)


def settle(
    relay: RelayProcess, since: int, troubled: bool, quiet: bool = False, timeout: float = 2.0
) -> None:
    """Wait until the log holds everything about the one request sent after ``since``.

    The access line is written once the answer is sent; a request that failed may log more
    after it (uvicorn's own error line, a slow traceback), so then wait for the log to stop
    growing. Without this, a crash's lines would be blamed on the next request. ``quiet``:
    a probe or scrape that went well, which the relay logs at debug level only.
    """
    deadline = time.monotonic() + timeout
    while not quiet and not any(end in _log_since(relay, since) for end in _REQUEST_ENDS):
        if time.monotonic() > deadline:
            break
        time.sleep(0.002)
    if troubled:
        deadline = time.monotonic() + timeout
        size = -1
        while size != (size := relay.log_path.stat().st_size) and time.monotonic() < deadline:
            time.sleep(0.05)


def _record(line: str) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


_FRAME = re.compile(r'File "([^"]+)", line (\d+), in (\S+)')
_RAISED = re.compile(r"^([A-Za-z_][\w.]*): ", re.MULTILINE)


def _short(path: str) -> str:
    return re.sub(r"^.*?/(?:site-packages|python3\.\d+)/|^.*/(?=app/)", "", path)


def _traceback(record: dict[str, Any]) -> tuple[str, str] | None:
    """The exception a log record carries, as (``Type: message``, where it was raised)."""
    exception = str(record.get("exception", "")).strip()
    if not exception:
        return None
    raised = [m.start() for m in _RAISED.finditer(exception)]
    last = exception[raised[-1] :].splitlines()[0] if raised else exception.splitlines()[-1]
    frames = _FRAME.findall(exception)
    if not frames:
        return last, "?"
    where = "{}:{} in {}".format(_short(frames[-1][0]), *frames[-1][1:])
    own = [frame for frame in frames if "/app/" in frame[0]]
    if own and own[-1] != frames[-1]:
        # Raised in a library: the relay's own frame that called it tells the causes apart.
        where += " from {}:{} in {}".format(_short(own[-1][0]), *own[-1][1:])
    return last, where


def excerpt(line: str) -> str:
    """A failure line, short: its event, the exception and where it was raised."""
    record = _record(line)
    if record is None:
        return line[:400]
    head = f"{record.get('level')} {str(record.get('event')).strip()!r} path={record.get('path')!r}"
    raised = _traceback(record)
    return head if raised is None else f"{head}\n        {raised[0][:300]}\n        at {raised[1]}"


def cause(line: str) -> str:
    """What a failure line says went wrong, without the input's details: the exception's
    type and the frame that raised it (or the event, when there is no traceback)."""
    record = _record(line)
    if record is None:
        return "a line that is not JSON"
    raised = _traceback(record)
    if raised is None:
        return f"{record.get('level')} {record.get('event')}"
    return f"{raised[0].split(':')[0]} at {raised[1]}"


# --- What a clear answer is ------------------------------------------------------------------


@dataclass
class Answer:
    """An HTTP answer, from httpx or from a raw socket."""

    status: int
    headers: dict[str, str]
    body: bytes

    @classmethod
    def of(cls, response: httpx.Response) -> Answer:
        return cls(response.status_code, dict(response.headers), response.content)


def answer_problems(answer: Answer, json_errors: bool = True) -> list[str]:
    """What is wrong with an answer (SPEC §4, §12): a 5xx, or (``json_errors``) an error
    that is not JSON ``{"error": <code>, "detail": <sentence>}``."""
    problems = []
    if answer.status >= 500:
        problems.append(f"status {answer.status}")
    if answer.status >= 400 and json_errors:
        try:
            payload = json.loads(answer.body)
        except ValueError:
            return [*problems, f"error answer is not JSON: {answer.body[:200]!r}"]
        if not (
            isinstance(payload, dict)
            and isinstance(payload.get("error"), str)
            and isinstance(payload.get("detail"), str)
            and payload["detail"]
        ):
            problems.append(f'error answer lacks "error"/"detail": {answer.body[:200]!r}')
    return problems


@dataclass
class Findings:
    """Failures of one test, grouped by cause (status, the log's exception and where it was
    raised): a test that collects them instead of stopping at the first shows every
    distinct failure at once, with one full example and the inputs that cause it."""

    relay: RelayProcess
    causes: dict[str, tuple[str, list[str]]] = field(default_factory=dict)

    @property
    def found(self) -> list[str]:
        return [what for _, inputs in self.causes.values() for what in inputs]

    def check(
        self,
        what: str,
        send: Callable[[], Answer],
        json_errors: bool = True,
        quiet_path: bool = False,
    ) -> None:
        """Send one request and keep what is wrong with its answer, if anything.

        ``json_errors=False`` for requests that are not valid HTTP: the server refuses them
        before the relay's code runs, with its own plain-text 400. ``quiet_path``: a path
        (/livez, /readyz, /metrics) whose successes the relay does not log.
        """
        mark = log_mark(self.relay)
        answer: Answer | None = None
        error: Exception | None = None
        try:
            answer = send()
        except (httpx.TransportError, OSError) as raised:
            error = raised  # the relay closed the connection without an answer
        troubled = answer is None or answer.status >= 500 or bool(log_failures(self.relay, mark))
        quiet = answer is not None and answer.status < 400 and quiet_path
        settle(self.relay, mark, troubled, quiet)
        self.record(what, answer, log_failures(self.relay, mark), error, json_errors)

    def record(
        self,
        what: str,
        answer: Answer | None,
        failures: list[str],
        error: Exception | None = None,
        json_errors: bool = True,
    ) -> None:
        if answer is None:
            problems = [f"no answer ({type(error).__name__})"]
        else:
            problems = answer_problems(answer, json_errors)
        if not problems and not failures:
            return
        key = "; ".join(
            [problems[0] if problems else "answered", *sorted({cause(f) for f in failures})]
        )
        if failures:
            problems.append("the relay logged:\n      " + "\n      ".join(map(excerpt, failures)))
        example = f"{what}\n    -> " + "; ".join(problems)
        self.causes.setdefault(key, (example, []))[1].append(what)

    def report(self) -> str:
        lines = [f"{len(self.found)} failing inputs, {len(self.causes)} distinct causes:"]
        for key, (example, inputs) in self.causes.items():
            lines.append(f"- {key}\n  {len(inputs)} inputs; the first: {example}")
            lines += [f"    also: {what}" for what in inputs[1:6]]
        return "\n".join(lines)


def assert_clear(relay: RelayProcess, what: str, send: Callable[[], Answer]) -> None:
    """Send one request; fail unless the answer is clear and the log stayed clean."""
    findings = Findings(relay)
    findings.check(what, send)
    assert not findings.found, findings.report()


def assert_still_serving(relay: RelayProcess) -> None:
    """SPEC §12: hostile input leaves the relay serving everyone else."""
    assert relay.process is not None
    assert relay.process.poll() is None, f"the relay exited with {relay.process.returncode}"
    ready = relay.client.get("/readyz")
    assert ready.status_code == 200, ready.text


def shown(data: bytes, longest: int = 300) -> str:
    """``data`` as a Python expression short enough to read and exact enough to replay:
    runs of a repeated unit become ``b'['*1000``; only a long stretch without repeats is cut
    (``...`` and its size)."""
    parts: list[str] = []
    literal = b""
    i = 0
    while i < len(data):
        for width in range(1, 7):
            unit = data[i : i + width]
            count = 1
            while data.startswith(unit, i + count * width):
                count += 1
            if count * width >= 40 and count >= 4:
                break
        else:
            literal += data[i : i + 1]
            i += 1
            continue
        if literal:
            parts.append(repr(literal))
            literal = b""
        parts.append(f"{unit!r}*{count}")
        i += count * width
    if literal:
        parts.append(repr(literal))
    text = " + ".join(parts) or "b''"
    if len(text) > longest:
        text = f"{text[: longest // 2]} ... {text[-longest // 4 :]} ({len(data)} bytes)"
    return text


# --- Requests no HTTP client library would send ----------------------------------------------


def send_raw(
    relay: RelayProcess,
    method: str,
    target: bytes,
    headers: dict[bytes, bytes] | None = None,
    body: bytes = b"",
) -> Answer:
    """One request exactly as given (target, header bytes), on a connection of its own."""
    lines = [method.encode() + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1"]
    lines += [name + b": " + value for name, value in (headers or {}).items()]
    lines += [b"Content-Length: " + str(len(body)).encode(), b"Connection: close"]
    return exchange(relay, b"\r\n".join(lines) + b"\r\n\r\n" + body)


def exchange(
    relay: RelayProcess, request: bytes, half_close: bool = False, timeout: float = 10
) -> Answer:
    """Send ``request`` bytes, then read the answer until the relay closes the connection;
    raises :class:`ConnectionResetError` when it closes without one. ``half_close`` ends
    the sending side at once (for a request that would otherwise leave the server waiting);
    the server may then drop the request instead of answering it."""
    with socket.create_connection(("127.0.0.1", relay.port), timeout=timeout) as sock:
        sock.sendall(request)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    data = b"".join(chunks)
    if not data:
        raise ConnectionResetError("the relay closed the connection without an answer")
    status_line, _, rest = data.partition(b"\r\n")
    head, _, payload = rest.partition(b"\r\n\r\n")
    answer_headers = {}
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        answer_headers[name.decode("latin-1").strip().lower()] = value.decode("latin-1").strip()
    if answer_headers.get("transfer-encoding") == "chunked":
        payload = _unchunk(payload)
    return Answer(int(status_line.split()[1]), answer_headers, payload)


def _unchunk(data: bytes) -> bytes:
    out = []
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out.append(data[:size])
        data = data[size + 2 :]
    return b"".join(out)

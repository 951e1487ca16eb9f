"""A small HTTP client for the Muse Cloud API (protocol section 4), signing with MSign.

Every request body is serialised here, once, so the bytes that are hashed into the signature are
exactly the bytes sent; the query string is built here too, in the order it goes on the wire.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from mmap import mmap
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode, urljoin, urlsplit

from muse_cloud_cli.errors import CliError

# requests, rich and the signer (cryptography) are imported where a call needs them: every
# command's parser imports this module (for Remote), and `muse-cloud --help` need not pay for
# them (they were two thirds of the client's start).
if TYPE_CHECKING:
    import requests
    from rich.console import Console
    from rich.progress import Progress, TaskID

    from muse_cloud_cli.signer import KeyFile

# Ingesting a large pack synchronously can take a while; connecting should not.
TIMEOUT = (10.0, 600.0)
# As long as the unpack function may take to build a fetch pack (its timeout).
FETCH_BUILD_WAIT_SECONDS = 900.0
ATTEMPTS = 5
FIRST_DELAY = 0.5
MAX_DELAY = 8.0
# The server refused without acting: any call may be sent again.
_BUSY_STATUSES = frozenset({429, 503})
_THROTTLING_CODES = frozenset(
    {"SlowDown", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"}
)
# The call may or may not have been acted on: only calls that mean the same twice go again.
_UNSURE_STATUSES = frozenset({500, 502, 504})
_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE"})
# POSTs that are reads, or that the server answers from the push record when repeated.
_IDEMPOTENT_POSTS = ("/fetch/mpack", "/push/unpack-mpack")
# An upload in parts: listing its parts reads, completing again finds the pack in place.
_IDEMPOTENT_UPLOAD_POSTS = ("/push/mpack-parts", "/push/mpack-complete")
_CHUNK = 256 * 1024
_S3_ERROR = re.compile(
    r"<Code>(?P<code>[^<]*)</Code>.*?<Message>(?P<message>[^<]*)</Message>", re.S
)


class ClientError(CliError):
    """An error answer from the API, object storage or the network (status 0)."""

    def __init__(self, status: int, code: str, message: str, item: str | None = None) -> None:
        super().__init__(code, message)
        self.status = status
        self.item = item


@dataclass(frozen=True)
class Remote:
    """``<base URL>/<owner>/<repo>``: the server and one repository on it."""

    base_url: str
    owner: str
    name: str

    @classmethod
    def parse(cls, url: str) -> Remote:
        parts = urlsplit(url)
        segments = [s for s in parts.path.split("/") if s]
        if parts.scheme not in ("http", "https") or not parts.netloc or len(segments) < 2:
            raise CliError(
                "invalid_remote", f"{url!r} is not a remote URL like http://host:port/owner/repo"
            )
        prefix = "/".join(segments[:-2])
        base = f"{parts.scheme}://{parts.netloc}" + (f"/{prefix}" if prefix else "")
        return cls(base, segments[-2], segments[-1])

    @property
    def url(self) -> str:
        return f"{self.base_url}/{self.owner}/{self.name}"


def _error_from(response: requests.Response) -> ClientError:
    status = response.status_code
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("code"), str):
        return ClientError(
            status, body["code"], str(body.get("message", "")), _optional_str(body.get("item"))
        )
    if isinstance(body, dict) and isinstance(body.get("detail"), list) and body["detail"]:
        # The resolver's own request validation answers with pydantic's error list.
        first = body["detail"][0]
        where = ".".join(str(p) for p in first.get("loc", []))
        message = str(first.get("msg") or first.get("type") or "invalid request")
        return ClientError(status, "invalid_request", f"{where}: {message}", where or None)
    found = _S3_ERROR.search(response.text)
    if found:
        return ClientError(status, found["code"], found["message"])
    text = response.text.strip()[:200] or response.reason or "no details"
    return ClientError(status, f"http_{status}", text)


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


def unreachable(method: str, url: str, error: requests.RequestException) -> ClientError:
    """One line a person can act on, instead of urllib3's chain of wrapped exceptions."""
    import requests

    text = str(error)
    if isinstance(error, requests.Timeout) or "timed out" in text:
        why = "it did not answer in time"
    elif "Name or service not known" in text or "Failed to resolve" in text:
        why = "its host name does not resolve"
    elif "refused" in text:
        why = "nothing listens there (is `muse-cloud dev` running? is the URL right?)"
    else:
        why = type(error).__name__
    parts = urlsplit(url)
    return ClientError(
        0, "unreachable", f"cannot reach {parts.scheme}://{parts.netloc} ({method}): {why}"
    )


def _retry_delay(attempt: int, response: requests.Response | None) -> float:
    after = response.headers.get("Retry-After", "") if response is not None else ""
    if after.isdigit():
        return min(float(after), MAX_DELAY)
    return min(FIRST_DELAY * 2.0**attempt, MAX_DELAY) * random.uniform(0.5, 1.0)


def _maybe_sent(error: requests.RequestException) -> bool:
    """False when no connection was made (the request cannot have been acted on)."""
    import requests

    if isinstance(error, requests.ConnectTimeout):
        return False
    text = str(error)
    return not ("refused" in text or "Failed to resolve" in text or "not known" in text)


def _should_retry(response: requests.Response, idempotent: bool) -> bool:
    if response.status_code in _BUSY_STATUSES:
        return True
    if response.status_code == 400 and any(c in response.text for c in _THROTTLING_CODES):
        return True
    return idempotent and response.status_code in _UNSURE_STATUSES


def send_with_retries(
    send: Callable[[], requests.Response], method: str, url: str, *, idempotent: bool
) -> requests.Response:
    """``send()`` again, with backoff, while the network fails or the server is busy."""
    import requests

    for attempt in range(ATTEMPTS):
        last = attempt == ATTEMPTS - 1
        try:
            response = send()
        except (requests.ConnectionError, requests.Timeout) as error:
            if last or (_maybe_sent(error) and not idempotent):
                raise unreachable(method, url, error) from None
            time.sleep(_retry_delay(attempt, None))
            continue
        except requests.RequestException as error:
            raise unreachable(method, url, error) from None
        if last or not _should_retry(response, idempotent):
            return response
        response.close()
        time.sleep(_retry_delay(attempt, response))
    raise AssertionError("unreachable: the last attempt returns or raises")


class _ProgressReader:
    """A file-like view of the upload that advances a progress bar as http.client reads it.

    It has a length, so requests sends ``Content-Length`` and never switches to chunked encoding,
    which a presigned S3 PUT would refuse.
    """

    def __init__(self, data: bytes | mmap, progress: Progress | None, task: TaskID | None) -> None:
        self._view = memoryview(data)
        self._offset = 0
        self._progress = progress
        self._task = task

    def __len__(self) -> int:
        return len(self._view)

    def read(self, size: int = -1) -> bytes:
        end = len(self._view) if size < 0 else min(len(self._view), self._offset + size)
        chunk = bytes(self._view[self._offset : end])
        self._offset = end
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=self._offset)
        return chunk


def transfer_progress(console: Console | None = None) -> Progress:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console or Console(stderr=True),
        transient=True,
    )


class MuseCloudClient:
    """The API of one server; repository routes take the owner and name of the repository."""

    def __init__(
        self,
        base_url: str,
        key: KeyFile | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.key = key
        self._base_path = urlsplit(self.base_url).path
        if session is None:
            import requests

            session = requests.Session()
        self._session = session

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> MuseCloudClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    # transport

    def request(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str | int | None] | None = None,
    ) -> requests.Response:
        """Send one signed request and return a 2xx or 3xx answer; anything else raises."""
        query = urlencode({k: v for k, v in (params or {}).items() if v is not None})
        target = self._base_path + path + (f"?{query}" if query else "")
        data = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        url = urljoin(self.base_url + "/", target)

        from muse_cloud_cli.signer import sign_request

        def send() -> requests.Response:
            headers = {"Accept": "application/json"}
            if body is not None:
                headers["Content-Type"] = "application/json"
            if self.key is not None:
                # Signed afresh each time: a nonce is accepted once.
                headers["Authorization"] = sign_request(self.key, method, target, data)
            return self._session.request(
                method,
                url,
                data=data or None,
                headers=headers,
                timeout=TIMEOUT,
                allow_redirects=False,
            )

        idempotent = method in _IDEMPOTENT_METHODS or path.endswith(
            _IDEMPOTENT_POSTS + _IDEMPOTENT_UPLOAD_POSTS
        )
        response = send_with_retries(send, method, url, idempotent=idempotent)
        if response.status_code >= 400:
            raise _error_from(response)
        return response

    def _json(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str | int | None] | None = None,
    ) -> dict[str, Any]:
        response = self.request(method, path, body, params)
        # An answer too large for the server's function comes from a short-lived URL instead.
        content = (
            self.download(response.headers["Location"])
            if response.is_redirect
            else response.content
        )
        if response.status_code == 204 or not content:
            return {}
        try:
            answer: Any = json.loads(content)
        except ValueError as error:
            raise ClientError(
                response.status_code, "invalid_response", f"{method} {path}: not JSON"
            ) from error
        if not isinstance(answer, dict):
            raise ClientError(
                response.status_code, "invalid_response", f"{method} {path}: not a JSON object"
            )
        return answer

    @staticmethod
    def _repo_path(owner: str, name: str, *rest: str) -> str:
        return "/" + "/".join(quote(part, safe="") for part in (owner, name, *rest))

    # repositories, identities, collaborators

    def create_repo(
        self, owner: str, name: str, visibility: str = "public", domain: str | None = None
    ) -> dict[str, Any]:
        body = {"owner": owner, "name": name, "visibility": visibility}
        if domain is not None:
            body["domain"] = domain
        return self._json("POST", "/api/repos", body)

    def get_repo(self, repo_id: str) -> dict[str, Any]:
        return self._json("GET", f"/api/repos/{quote(repo_id, safe='')}")

    def repo_by_slug(self, owner: str, name: str) -> dict[str, Any]:
        return self._json("GET", "/api/repos/by-slug" + self._repo_path(owner, name))

    def delete_repo(self, repo_id: str) -> None:
        self.request("DELETE", f"/api/repos/{quote(repo_id, safe='')}")

    def create_identity(
        self, handle: str, public_key: str, *, is_admin: bool = False, is_agent: bool = False
    ) -> dict[str, Any]:
        body = {
            "handle": handle,
            "public_key": public_key,
            "is_admin": is_admin,
            "is_agent": is_agent,
        }
        return self._json("POST", "/api/identities", body)

    def me(self) -> dict[str, Any]:
        return self._json("GET", "/api/identities/me")

    def set_collaborator(self, repo_id: str, handle: str, role: str) -> dict[str, Any]:
        path = f"/api/repos/{quote(repo_id, safe='')}/collaborators/{quote(handle, safe='')}"
        return self._json("PUT", path, {"role": role})

    def remove_collaborator(self, repo_id: str, handle: str) -> None:
        path = f"/api/repos/{quote(repo_id, safe='')}/collaborators/{quote(handle, safe='')}"
        self.request("DELETE", path)

    def collaborators(self, repo_id: str) -> dict[str, Any]:
        return self._json("GET", f"/api/repos/{quote(repo_id, safe='')}/collaborators")

    def update_repo(self, repo_id: str, default_branch: str) -> dict[str, Any]:
        body = {"default_branch": default_branch}
        return self._json("PATCH", f"/api/repos/{quote(repo_id, safe='')}", body)

    def protection(self, repo_id: str) -> dict[str, Any]:
        return self._json("GET", f"/api/repos/{quote(repo_id, safe='')}/protection")

    def set_protection(
        self, repo_id: str, rules: list[dict[str, Any]], version: int | None
    ) -> dict[str, Any]:
        path = f"/api/repos/{quote(repo_id, safe='')}/protection"
        return self._json("PUT", path, {"rules": rules, "version": version})

    # one repository's history

    def refs(self, owner: str, name: str) -> dict[str, Any]:
        return self._json("GET", self._repo_path(owner, name, "refs"))

    def delete_branch(
        self, owner: str, name: str, branch: str, expected_head: str
    ) -> dict[str, Any]:
        # In the query, not the path: a gateway that decodes the path would split feature%2Fx.
        params = {"branch": branch, "expected_head": expected_head}
        return self._json("DELETE", self._repo_path(owner, name, "refs"), params=params)

    def events(
        self, owner: str, name: str, *, since: str | None = None, limit: int | None = None
    ) -> dict[str, Any]:
        params = {"since": since, "limit": limit}
        return self._json("GET", self._repo_path(owner, name, "events"), params=params)

    def presign(
        self,
        owner: str,
        name: str,
        mpack_key: str,
        size_bytes: int,
        *,
        branch: str | None = None,
        head: str | None = None,
        force: bool = False,
        multipart: bool = False,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"mpack_key": mpack_key, "size_bytes": size_bytes, "force": force}
        if multipart:
            body["multipart"] = True
        if branch is not None:
            body["branch"] = branch
        if head is not None:
            body["head"] = head
        return self._json("POST", self._repo_path(owner, name, "push", "mpack-presign"), body)

    def unpack(
        self, owner: str, name: str, mpack_key: str, branch: str, head: str, force: bool = False
    ) -> dict[str, Any]:
        body = {"mpack_key": mpack_key, "branch": branch, "head": head, "force": force}
        return self._json("POST", self._repo_path(owner, name, "push", "unpack-mpack"), body)

    def upload_parts(self, owner: str, name: str, mpack_key: str, upload_id: str) -> dict[str, Any]:
        body = {"mpack_key": mpack_key, "upload_id": upload_id}
        return self._json("POST", self._repo_path(owner, name, "push", "mpack-parts"), body)

    def complete_upload(
        self, owner: str, name: str, mpack_key: str, upload_id: str
    ) -> dict[str, Any]:
        body = {"mpack_key": mpack_key, "upload_id": upload_id}
        return self._json("POST", self._repo_path(owner, name, "push", "mpack-complete"), body)

    def repo_usage(self, owner: str, name: str) -> dict[str, Any]:
        return self._json("GET", self._repo_path(owner, name, "usage"))

    def owner_usage(self, owner: str) -> dict[str, Any]:
        return self._json("GET", f"/api/owners/{quote(owner, safe='')}/usage")

    def push_status(self, owner: str, name: str, push_id: str) -> dict[str, Any]:
        return self._json("GET", self._repo_path(owner, name, "push", push_id))

    def commit(self, owner: str, name: str, commit_id: str) -> dict[str, Any]:
        return self._json("GET", self._repo_path(owner, name, "commits", commit_id))

    def log(
        self,
        owner: str,
        name: str,
        *,
        branch: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        params = {"branch": branch, "limit": limit, "cursor": cursor}
        return self._json("GET", self._repo_path(owner, name, "log"), params=params)

    def snapshot(self, owner: str, name: str, snapshot_id: str) -> dict[str, Any]:
        return self._json("GET", self._repo_path(owner, name, "snapshots", snapshot_id))

    def object(self, owner: str, name: str, object_id: str) -> bytes:
        response = self.request("GET", self._repo_path(owner, name, "objects", object_id))
        if response.is_redirect:
            return self.download(response.headers["Location"])
        return response.content

    def fetch(
        self,
        owner: str,
        name: str,
        want: list[str],
        have: list[str],
        timeout: float = FETCH_BUILD_WAIT_SECONDS,
    ) -> dict[str, Any]:
        """The pack's ticket. A pack too long to build in one call is built in the background:
        its build is asked about until the pack is there (or the build's refusal raises)."""
        body = {"want": want, "have": have}
        ticket = self._json("POST", self._repo_path(owner, name, "fetch", "mpack"), body)
        deadline = time.monotonic() + timeout
        while ticket.get("status") == "building":
            if time.monotonic() > deadline:
                raise ClientError(
                    0,
                    "fetch_timeout",
                    f"the server had not built the pack after {timeout:.0f} s",
                    ticket.get("build_id"),
                )
            time.sleep(float(ticket.get("retry_after_seconds") or 1))
            build = self._repo_path(owner, name, "fetch", "builds", str(ticket["build_id"]))
            ticket = self._json("GET", build)
        return ticket

    # object storage: presigned URLs carry their own authorisation, so nothing is signed here

    def upload(
        self, url: str, headers: Mapping[str, str], data: bytes | mmap, progress: bool = False
    ) -> None:
        """PUT ``data`` to a presigned URL, sending exactly the headers the server asked for."""
        bar = transfer_progress() if progress else None
        task = bar.add_task("upload", total=len(data)) if bar is not None else None

        def send() -> requests.Response:
            # The key is the bytes' hash: a second PUT stores the same object again.
            reader = _ProgressReader(data, bar, task)
            return self._session.put(url, data=reader, headers=dict(headers), timeout=TIMEOUT)

        with bar or nullcontext():
            response = send_with_retries(send, "PUT", url, idempotent=True)
        if response.status_code >= 300:
            raise _error_from(response)

    def download(self, url: str, progress: bool = False) -> bytes:
        """GET a presigned URL (no signature: it would only leak to object storage)."""
        import requests

        try:
            response = send_with_retries(
                lambda: self._session.get(url, stream=True, timeout=TIMEOUT),
                "GET",
                url,
                idempotent=True,
            )
            if response.status_code >= 300:
                raise _error_from(response)
            total = int(response.headers.get("Content-Length") or 0) or None
            bar = transfer_progress() if progress else None
            task = bar.add_task("download", total=total) if bar is not None else None
            chunks: list[bytes] = []
            with bar or nullcontext():
                for chunk in response.iter_content(_CHUNK):
                    chunks.append(chunk)
                    if bar is not None and task is not None:
                        bar.advance(task, len(chunk))
            return b"".join(chunks)
        except requests.RequestException as error:
            raise unreachable("GET", url, error) from None

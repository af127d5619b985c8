"""The app in process, over HTTP semantics: starlette's TestClient, each request
in one trip to the app's event loop.

starlette's own transport hands every ASGI message across threads: the request, the
response's start, each piece of its body and the end each wait for the portal's
event loop and back, eight trips a request, about 2.5 ms of CPU, more than most of
the app's requests cost themselves. Here the whole exchange is one coroutine on that
same loop: the app runs as the TestClient runs it (the same scope, lifespan, loop and
thread, background tasks finished before the answer is returned), and the answer comes
back whole. The app streams no response (no SSE, no websocket), so nothing waits on
a body being read while the app still writes it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import anyio
import anyio.from_thread
import httpx2 as httpx
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Message

from qinqing.http.retry import replay_body

_PortalFactory = Callable[[], contextlib.AbstractContextManager[anyio.from_thread.BlockingPortal]]


class _Answer:
    """What the app sent for one request."""

    def __init__(self) -> None:
        self.start: Message | None = None
        self.body: list[bytes] = []
        self.debug: dict[str, Any] | None = None
        self.error: BaseException | None = None


class _OneTrip(httpx.BaseTransport):
    def __init__(
        self,
        app: ASGIApp,
        portal_factory: _PortalFactory,
        *,
        raise_server_exceptions: bool,
        client: tuple[str, int],
        app_state: dict[str, Any],
    ) -> None:
        self.app = app
        self.portal_factory = portal_factory
        self.raise_server_exceptions = raise_server_exceptions
        self.client = client
        self.app_state = app_state

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in ("http", "https"):
            raise ValueError(f"only HTTP requests are served in process, not {url.scheme}")
        port = url.port or {"http": 80, "https": 443}[url.scheme]
        headers = [] if "host" in request.headers else [(b"host", url.netloc)]
        headers += [(k.lower().encode(), v.encode()) for k, v in request.headers.multi_items()]
        # The scope starlette's TestClient builds, field for field.
        scope = {
            "type": "http",
            "http_version": "1.1",
            "method": request.method,
            "path": unquote(url.path),
            "raw_path": url.raw_path.split(b"?", 1)[0],
            "root_path": "",
            "scheme": url.scheme,
            "query_string": url.query,
            "headers": headers,
            "client": self.client,
            "server": [url.raw_host.decode("ascii"), port],
            "extensions": {"http.response.debug": {}},
            "state": self.app_state.copy(),
        }
        with self.portal_factory() as portal:
            answer = portal.call(self._exchange, scope, request.read())
        if answer.error is not None and self.raise_server_exceptions:
            raise answer.error
        if answer.start is None:
            return httpx.Response(500, request=request)
        response = httpx.Response(
            answer.start["status"],
            headers=[(k.decode(), v.decode()) for k, v in answer.start.get("headers", [])],
            content=b"" if request.method == "HEAD" else b"".join(answer.body),
            request=request,
        )
        if answer.debug is not None:
            response.extensions["http.response.debug"] = answer.debug
        return response

    async def _exchange(self, scope: dict[str, Any], body: bytes) -> _Answer:
        answer = _Answer()
        complete = anyio.Event()

        async def disconnect() -> Message:
            await complete.wait()  # the client "disconnects" once the answer is whole
            return {"type": "http.disconnect"}

        receive = replay_body(body, disconnect)

        async def send(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.start":
                assert answer.start is None, 'more than one "http.response.start"'
                answer.start = message
            elif kind == "http.response.body":
                assert answer.start is not None, 'a body before "http.response.start"'
                answer.body.append(bytes(message.get("body", b"")))
                if not message.get("more_body", False):
                    complete.set()
            elif kind == "http.response.debug":
                answer.debug = message["info"]

        try:
            await self.app(scope, receive, send)
        except Exception as exc:
            answer.error = exc
        finally:
            complete.set()
        return answer


class AppClient(TestClient):
    """starlette's TestClient (its lifespan, portal, cookies, redirects followed) with
    the one-trip transport above."""

    __test__ = False

    def __init__(
        self,
        app: ASGIApp,
        *,
        base_url: str = "http://testserver",
        raise_server_exceptions: bool = True,
        headers: dict[str, str] | None = None,
        client: tuple[str, int] = ("testclient", 50000),
    ) -> None:
        super().__init__(
            app,
            base_url=base_url,
            raise_server_exceptions=raise_server_exceptions,
            headers=headers,
            client=client,
        )
        self._transport = _OneTrip(
            self.app,
            self._portal_factory,
            raise_server_exceptions=raise_server_exceptions,
            client=client,
            app_state=self.app_state,
        )

"""Django's ASGI handler, with synchronous views served in one thread hop.

Under ASGI Django runs each synchronous middleware's request and response
hooks through ``sync_to_async``: about thirty hand-offs between the event
loop and a thread for one plain API request, which cost more CPU than the
request's own work (a constant JSON view took 4-6 ms of CPU under uvicorn,
against well under 1 ms under WSGI). On top of that, each request gets a
thread of its own (asgiref's ``ThreadSensitiveContext``), started and joined
by the event loop, and two tasks to watch for a disconnect.

This handler resolves the URL from the ASGI scope first. A synchronous view
(every API call but the waiting ones, the admin, static files) is served as
under WSGI: the request's whole synchronous life (``request_started``, the
middleware chain and view, ``request_finished``, which hands the database
connection back) runs in one call on a fixed pool of threads, and the event
loop only reads the body and writes the answer. An async view (the long
poll, the event stream) goes through Django's own async path, so waiting
still costs no thread.
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.base import BaseHandler
from django.http import HttpRequest, HttpResponseBase, QueryDict
from django.urls import Resolver404, ResolverMatch, get_resolver, set_script_prefix

from jobs.api.actions import prefers_wait
from jobs.waiting import serve_waits_from

# Threads per web process for synchronous views: as many as the process's
# database pool holds connections, so a request never waits for one.
SYNC_THREADS = int(os.environ.get("WEB_SYNC_THREADS") or os.environ.get("DB_POOL_MAX_SIZE") or 20) or 20
# Threads for requests that may wait (`Prefer: wait=N`), apart from the pool
# above so waiting never holds up other requests. A waiting thread holds no
# database connection (jobs.waiting); their number is bounded by the users'
# caps on waits (JOBS["MAX_WAITS_PER_USER"]), this is a backstop.
WAITING_THREADS = int(os.environ.get("WEB_WAITING_THREADS") or 1000)


# Where ``__call__`` leaves the URL match it made from the scope, so the
# synchronous chain does not resolve the same path a second time.
_MATCH = "_one_hop_resolver_match"


class _SyncChain(BaseHandler):
    """Django's synchronous request path, calling a view's ``sync_variant`` when it has one."""

    def resolve_request(self, request: HttpRequest) -> Any:
        match = request.__dict__.pop(_MATCH, None)
        if match is None or hasattr(request, "urlconf"):
            # No match made yet, or a middleware chose another URLconf.
            match = super().resolve_request(request)
        else:
            request.resolver_match = match
        sync_variant = getattr(match.func, "sync_variant", None)
        if sync_variant is not None:
            match.func = sync_variant
        return match


class OneHopASGIHandler(ASGIHandler):
    """An ``ASGIHandler`` that serves synchronous views with one thread hop per request.

    An async view may carry ``needs_async(request)`` and ``sync_variant``:
    requests it does not need to wait for then take the synchronous path
    (the job poll without ``?wait=``).
    """

    def __init__(self) -> None:
        super().__init__()
        self._sync_handler = _SyncChain()
        self._sync_handler.load_middleware(is_async=False)
        self._threads = ThreadPoolExecutor(max_workers=SYNC_THREADS, thread_name_prefix="django-sync")
        self._waiting_threads = ThreadPoolExecutor(max_workers=WAITING_THREADS, thread_name_prefix="django-wait")

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Serve one ASGI connection: synchronous views in one hop, the rest as Django does."""
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        path_info = _path_info(scope)
        match = _resolve(path_info)
        if match is not None and iscoroutinefunction(match.func) and _needs_async(match.func, _Probe(scope, path_info)):
            await super().__call__(scope, receive, send)
            return
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        loop = asyncio.get_running_loop()
        threads = self._threads
        if prefers_wait(scope["headers"]):
            # It may wait on this loop's job watcher, from a thread apart.
            serve_waits_from(loop)
            threads = self._waiting_threads
        try:
            response = await loop.run_in_executor(threads, self._respond, scope, body_file, send, loop, match)
            if response is not None:
                await self.send_response(response, send)
        finally:
            body_file.close()

    def _respond(
        self, scope: dict[str, Any], body_file: Any, send: Any, loop: Any, match: Any = None
    ) -> HttpResponseBase | None:
        """The request's synchronous life, in this pool thread; the answer if the loop sends it.

        A streaming answer is sent from here, chunk by chunk, so that its
        iterator (which may read the database) runs in the request's thread.
        """
        set_script_prefix(get_script_prefix(scope))
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, response = self.create_request(scope, body_file)
        try:
            if request is not None:
                if match is not None:
                    request.__dict__[_MATCH] = match
                response = self._sync_handler.get_response(request)
            response._handler_class = self.__class__
            if not response.streaming:
                return response
            asyncio.run_coroutine_threadsafe(self._send_start(response, send), loop).result()
            if response.is_async:
                asyncio.run_coroutine_threadsafe(self._send_async_body(response, send), loop).result()
            else:
                for part in response.streaming_content:
                    for chunk, _ in self.chunk_bytes(part):
                        asyncio.run_coroutine_threadsafe(
                            send({"type": "http.response.body", "body": chunk, "more_body": True}), loop
                        ).result()
            asyncio.run_coroutine_threadsafe(send({"type": "http.response.body"}), loop).result()
            return None
        finally:
            # request_finished: this thread's database connection goes back
            # to the pool. A non-streaming answer's content is already built.
            if response is not None:
                response.close()

    async def _send_start(self, response: HttpResponseBase, send: Any) -> None:
        headers = [
            (header.encode("ascii") if isinstance(header, str) else bytes(header),
             value.encode("latin1") if isinstance(value, str) else bytes(value))
            for header, value in response.items()
        ]  # fmt: skip
        headers += [(b"Set-Cookie", c.output(header="").encode("ascii").strip()) for c in response.cookies.values()]
        await send({"type": "http.response.start", "status": response.status_code, "headers": headers})

    async def _send_async_body(self, response: Any, send: Any) -> None:
        async for part in response.streaming_content:
            for chunk, _ in self.chunk_bytes(part):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        """Answer ``request`` (on Django's async path) through the chain that suits its view."""
        if self._view_is_async(request):
            return await super().get_response_async(request)
        # thread_sensitive: the request's own thread, where Django's signals
        # and database connection for this request live (ThreadSensitiveContext).
        return await sync_to_async(self._sync_handler.get_response, thread_sensitive=True)(request)

    @staticmethod
    def _view_is_async(request: HttpRequest) -> bool:
        match = _resolve(request.path_info)
        if match is None:
            return False  # the synchronous chain answers the 404
        return iscoroutinefunction(match.func) and _needs_async(match.func, request)


def _path_info(scope: dict[str, Any]) -> str:
    """The scope's path below its script prefix, as ``ASGIRequest`` sets ``path_info``."""
    script_name = get_script_prefix(scope)
    return scope["path"].removeprefix(script_name) if script_name else scope["path"]


# Matches of recently requested paths, for the resolver they came from: a
# client polls the same job's path over and over, and resolving it again
# (a regex per pattern, through every include) cost more than the view's own
# work on a 304. Bounded; oldest out first.
_MATCH_CACHE_SIZE = 2048
_matches: tuple[Any, dict[str, ResolverMatch]] = (None, {})


def _resolve(path_info: str) -> ResolverMatch | None:
    """The default URLconf's match for ``path_info``, or None (the synchronous chain answers the 404).

    Each call gets a match of its own: the chain may replace its view
    (``sync_variant``), and middleware may change its arguments.
    """
    global _matches
    resolver = get_resolver()
    if _matches[0] is not resolver:  # a new URLconf (tests override it)
        _matches = (resolver, {})
    cache = _matches[1]
    match = cache.get(path_info)
    if match is None:
        try:
            match = resolver.resolve(path_info)
        except Resolver404:
            return None  # not kept: unknown paths must not push known ones out
        if len(cache) >= _MATCH_CACHE_SIZE:
            del cache[next(iter(cache))]
        cache[path_info] = match
    # ResolverMatch refuses copy.copy (it refuses pickling); its state is its __dict__.
    own = ResolverMatch.__new__(ResolverMatch)
    own.__dict__.update(match.__dict__)
    own.kwargs = dict(match.kwargs)
    return own


def _needs_async(view: Any, request: HttpRequest | _Probe) -> bool:
    """Whether an async ``view`` must serve ``request`` on the async path (see ``OneHopASGIHandler``)."""
    needs_async = getattr(view, "needs_async", None)
    return needs_async is None or bool(needs_async(request))


class _Probe:
    """What ``needs_async`` reads of a request (path, method, query), from the scope, without an ``HttpRequest``.

    The query is parsed only if read.
    """

    __slots__ = ("path_info", "method", "META", "_get")

    def __init__(self, scope: dict[str, Any], path_info: str) -> None:
        query = scope.get("query_string", b"")
        self.path_info = path_info
        self.method = scope.get("method", "GET").upper()
        self.META = {"QUERY_STRING": query.decode("latin-1") if isinstance(query, bytes) else query}
        self._get: QueryDict | None = None

    @property
    def GET(self) -> QueryDict:  # noqa: N802 - HttpRequest's name
        if self._get is None:
            self._get = QueryDict(self.META["QUERY_STRING"])
        return self._get

"""Django's ASGI handler, with synchronous views served in one thread hop.

Under ASGI Django runs each synchronous middleware's request and response
hooks through ``sync_to_async``: about thirty hand-offs between the event
loop and a thread for one plain API request, which cost more CPU than the
request's own work (a constant JSON view took 4-6 ms of CPU under uvicorn,
against well under 1 ms under WSGI). This handler resolves the URL first:
a synchronous view (every API call but the waiting ones) goes through
Django's synchronous middleware chain in a single hop to the request's
thread, exactly as under WSGI; an async view (the long poll, the event
stream) goes through the async chain, so waiting still costs no thread.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.base import BaseHandler
from django.http import HttpRequest, HttpResponseBase
from django.urls import Resolver404, get_resolver


class _SyncChain(BaseHandler):
    """Django's synchronous request path, calling a view's ``sync_variant`` when it has one."""

    def resolve_request(self, request: HttpRequest) -> Any:
        match = super().resolve_request(request)
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

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        """Answer ``request`` through the chain that suits its view."""
        if self._view_is_async(request):
            return await super().get_response_async(request)
        # thread_sensitive: the request's own thread, where Django's signals
        # and database connection for this request live (ThreadSensitiveContext).
        return await sync_to_async(self._sync_handler.get_response, thread_sensitive=True)(request)

    @staticmethod
    def _view_is_async(request: HttpRequest) -> bool:
        try:
            match: Any = get_resolver().resolve(request.path_info)
        except Resolver404:
            return False  # the synchronous chain answers the 404
        view = match.func
        if not iscoroutinefunction(view):
            return False
        needs_async = getattr(view, "needs_async", None)
        return needs_async is None or bool(needs_async(request))

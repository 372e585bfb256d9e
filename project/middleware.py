"""WhiteNoise, able to sit in an async (ASGI) middleware stack."""

from __future__ import annotations

from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from whitenoise.middleware import WhiteNoiseMiddleware


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    """Serve static files with WhiteNoise; pass everything else on, sync or async.

    WhiteNoise's middleware is synchronous only. In an async stack Django
    would then run every request below it on a thread that waits for the
    async views: a long poll or an event stream would hold a thread for as
    long as it waits. Here only the static files take a thread.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Any = None) -> None:
        super().__init__(get_response)
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: Any) -> Any:
        if self.is_async:
            return self._acall(request)
        return super().__call__(request)

    async def _acall(self, request: Any) -> Any:
        static_file = (
            await sync_to_async(self.find_file)(request.path_info)
            if self.autorefresh
            else self.files.get(request.path_info)
        )
        if static_file is not None:
            return await sync_to_async(self.serve)(static_file, request)
        return await self.get_response(request)

"""The work of Django's own request_started / request_finished receivers, done without sending
the signals, for the short chain (see `handler.ShortStackWSGIHandler`)."""

from __future__ import annotations

import contextlib
import threading
import weakref

from django.conf import settings
from django.core import signals
from django.core.cache import close_caches
from django.core.cache.backends.base import BaseCache
from django.core.handlers.base import reset_urlconf
from django.db import close_old_connections, connections, reset_queries
from django.http import HttpResponseBase
from django.utils.module_loading import import_string


class RequestSignals:
    """What Django's own receivers of request_started and request_finished do, without the
    signals, for the short stack (see ShortStackWSGIHandler).

    Valid while both signals have exactly Django's receivers (`default_receivers()` compares
    the receiver lists with those it last checked, pointer by pointer, and checks them again
    when they changed), and every configured cache's close() is BaseCache's no-op
    (close_caches then does nothing)."""

    def __init__(self) -> None:
        self.started_receivers = list(signals.request_started.receivers)
        self.finished_receivers = list(signals.request_finished.receivers)
        self._thread = threading.local()
        self._django_receivers = self._receivers_are_djangos()
        self._caches_close_nothing = self._caches_close_is_a_noop()
        signals.setting_changed.connect(self._setting_changed, weak=True)

    def _receivers_are_djangos(self) -> bool:
        def functions(receivers) -> list:
            return [
                ref() if isinstance(ref, weakref.ReferenceType) else ref for _, ref, _ in receivers
            ]

        return sorted(map(id, functions(self.started_receivers))) == sorted(
            map(id, [reset_queries, close_old_connections])
        ) and sorted(map(id, functions(self.finished_receivers))) == sorted(
            map(id, [close_old_connections, close_caches, reset_urlconf])
        )

    @staticmethod
    def _caches_close_is_a_noop() -> bool:
        return all(
            import_string(cache["BACKEND"]).close is BaseCache.close
            for cache in settings.CACHES.values()
        )

    def _setting_changed(self, setting: str, **kwargs) -> None:
        if setting == "CACHES":
            self._caches_close_nothing = self._caches_close_is_a_noop()
        elif setting == "DATABASES":
            self._thread = threading.local()

    def default_receivers(self) -> bool:
        started, finished = signals.request_started.receivers, signals.request_finished.receivers
        if started != self.started_receivers or finished != self.finished_receivers:
            # connected or disconnected since (a receiver put back comes last): look again
            self.started_receivers, self.finished_receivers = list(started), list(finished)
            self._django_receivers = self._receivers_are_djangos()
        return self._django_receivers and self._caches_close_nothing

    def _connections(self) -> list:
        """This thread's initialized connections. Django keeps one connection object per
        alias and thread for the thread's life (closing it keeps the object), so once every
        alias has one they are kept here instead of being looked up in asgiref's locals."""
        kept = self._thread.__dict__.get("connections")
        if kept is not None:
            return kept
        initialized = connections.all(initialized_only=True)
        if len(initialized) == len(connections.settings):
            self._thread.connections = initialized
        return initialized

    def request_started(self) -> None:
        """reset_queries() and close_old_connections()."""
        for connection in self._connections():
            if connection.queries_log:
                connection.queries_log.clear()
            connection.close_if_unusable_or_obsolete()

    def response_close(self, response: HttpResponseBase) -> None:
        """HttpResponseBase.close(), and close_old_connections() for request_finished
        (close_caches has nothing to close; reset_urlconf nothing to reset)."""
        for closer in response._resource_closers:
            with contextlib.suppress(Exception):  # as HttpResponseBase.close
                closer()
        response._resource_closers.clear()
        response.closed = True
        response.__dict__.pop("close", None)  # this method, bound to the response: no cycle
        for connection in self._connections():
            connection.close_if_unusable_or_obsolete()

"""Latest-item-wins processing in a thread of its own, without ROS.

A producer (a subscription callback) puts items; a worker thread processes the newest one.
An item put while another still waits replaces it, so a slow consumer never works through a
backlog: it always takes the newest item and drops the rest (the caller counts them).
"""
from __future__ import annotations

import threading
from typing import Any, Callable


class LatestWorker:
    """Calls ``process(item)`` in a worker thread on the newest item put."""

    def __init__(self, process: Callable[[Any], None], name: str = "latest_worker") -> None:
        self._process = process
        self._name = name
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._pending: Any = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """Whether the worker thread is started (and not stopped)."""
        return self._thread is not None

    def put(self, item: Any) -> bool:
        """Offer ``item``; returns True when it replaced one that was never processed."""
        with self._lock:
            replaced, self._pending = self._pending is not None, item
        self._wake.set()
        return replaced

    def start(self) -> None:
        """Start the worker thread (no-op when running)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread after the item in progress, if any; pending items are discarded."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._wake.set()
            thread.join()
        with self._lock:
            self._pending = None

    def _run(self) -> None:
        me = threading.current_thread()
        while self._thread is me:
            self._wake.wait()
            with self._lock:
                self._wake.clear()
                item, self._pending = self._pending, None
            if item is not None and self._thread is me:
                self._process(item)

"""Hand pipeline results and status messages from worker threads to the GUI thread.

The sink keeps only the newest result in a one-slot mailbox and emits ``frame_ready`` only when the GUI
has taken the previous one, so a slow GUI never accumulates a queue of frames (and their memory).
"""

from __future__ import annotations

import threading

from PyQt6.QtCore import QObject, pyqtSignal


class PipelineBridge(QObject):
    """Created on the GUI thread; its signals are delivered there (queued) whoever emits them."""

    frame_ready = pyqtSignal()
    status = pyqtSignal(str)

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._newest = None
        self._pending = False
        self.delivered = 0  # results handed to the GUI
        self.dropped = 0  # results replaced before the GUI took them

    def sink(self, result) -> None:
        """Pipeline sink (worker thread): store the newest result, signal only if none is pending."""
        with self._lock:
            if self._newest is not None:
                self.dropped += 1
            self._newest = result
            if self._pending:
                return
            self._pending = True
        self.frame_ready.emit()

    def take(self):
        """GUI thread: the newest result (or None) and clear the mailbox."""
        with self._lock:
            result, self._newest = self._newest, None
            self._pending = False
            if result is not None:
                self.delivered += 1
        return result

    def post_status(self, message: str) -> None:
        """Status listener usable from any thread."""
        self.status.emit(message)

"""numpy images -> Qt pixmaps, and a label that shows an image scaled to fit."""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import Qt
from PyQt6.QtGui import QImage, QPixmap
from PyQt6.QtWidgets import QLabel, QSizePolicy


def to_qimage(image: np.ndarray) -> QImage:
    """(H, W) uint8 gray or (H, W, 3) uint8 BGR -> a QImage that owns its pixels."""
    image = np.ascontiguousarray(image)
    h, w = image.shape[:2]
    if image.ndim == 2:
        qimg = QImage(image.data, w, h, image.strides[0], QImage.Format.Format_Grayscale8)
    else:
        qimg = QImage(image.data, w, h, image.strides[0], QImage.Format.Format_BGR888)
    return qimg.copy()  # detach from the numpy buffer, which the worker may reuse


class ImageView(QLabel):
    """Shows the latest image, scaled to the label keeping the aspect ratio."""

    def __init__(self, placeholder: str = "", parent=None) -> None:
        super().__init__(placeholder, parent)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.setMinimumSize(160, 120)
        self.setStyleSheet("background: #111; color: #bbb;")
        self._pixmap: QPixmap | None = None

    def set_image(self, image: np.ndarray) -> None:
        self._pixmap = QPixmap.fromImage(to_qimage(image))
        self._rescale()

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt naming
        super().resizeEvent(event)
        self._rescale()

    def _rescale(self) -> None:
        if self._pixmap is not None:
            self.setPixmap(self._pixmap.scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio,
                                               Qt.TransformationMode.SmoothTransformation))

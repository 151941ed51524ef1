"""numpy RGB arrays to Qt images, in the GUI thread only."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QImage, QPixmap

from engine.contract.request import RGBImage


def to_qimage(image: RGBImage) -> QImage:
    """A QImage that owns its pixels: .copy() detaches it from the numpy buffer, which may go away."""
    array = np.ascontiguousarray(image[..., :3], dtype=np.uint8)
    height, width = array.shape[:2]
    return QImage(array.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()


def scaled_pixmap(image: QImage, size: QSize) -> QPixmap:
    """Fit into size; small images (the built-in model's 64 px) are enlarged with hard pixel edges."""
    if image.isNull() or size.isEmpty():
        return QPixmap()
    enlarge = image.width() * 2 <= size.width() and image.height() * 2 <= size.height()
    mode = Qt.TransformationMode.FastTransformation if enlarge else Qt.TransformationMode.SmoothTransformation
    return QPixmap.fromImage(image.scaled(size, Qt.AspectRatioMode.KeepAspectRatio, mode))


def from_qimage(image: QImage) -> RGBImage:
    """The pixels of a QImage as an (height, width, 3) uint8 array of its own."""
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    width, height, stride = rgb.width(), rgb.height(), rgb.bytesPerLine()
    if width == 0 or height == 0:
        return np.zeros((0, 0, 3), np.uint8)
    buffer = np.frombuffer(rgb.constBits(), dtype=np.uint8, count=stride * height)
    return buffer.reshape(height, stride)[:, : width * 3].reshape(height, width, 3).copy()

"""numpy RGB arrays to Qt images, and image files to Qt images.

QImage is safe to make on any thread (QPixmap only on the GUI thread), so read_image runs on pool
threads (gui.state.background) and only the finished QImage reaches the GUI thread.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QBuffer, QByteArray, QSize, Qt
from PySide6.QtGui import QImage, QImageReader, QPixmap

from engine.contract.limits import MAX_SIDE
from engine.contract.request import RGBImage
from engine.files.safe_paths import open_regular

# A PNG of the largest image Fewstep makes (4096 px square, RGB) is under 50 MB even uncompressed;
# a bigger "image" is something else, and is not read into memory.
MAX_IMAGE_FILE_BYTES = 3 * MAX_SIDE * MAX_SIDE + (1 << 20)


def read_image(path: Path, fit: QSize | None = None) -> QImage:
    """The image in a file, scaled down to about twice `fit` where given; a null QImage if it is not
    a readable image. Never on the GUI thread: the file may be slow, huge or a FIFO (refused unread)."""
    try:
        with open_regular(path) as handle:
            data = handle.read(MAX_IMAGE_FILE_BYTES + 1)
    except OSError:
        return QImage()
    if len(data) > MAX_IMAGE_FILE_BYTES:
        return QImage()
    reader = QImageReader()
    buffer = QBuffer()
    buffer.setData(QByteArray(data))
    reader.setDevice(buffer)
    reader.setAutoTransform(False)
    size = reader.size()
    # Decoding at the size shown saves most of the work for a thumbnail of a 1024 px image.
    if fit is not None and size.isValid() and size.width() > fit.width() * 4:
        reader.setScaledSize(size.scaled(fit * 2, Qt.AspectRatioMode.KeepAspectRatio))
    return reader.read()


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

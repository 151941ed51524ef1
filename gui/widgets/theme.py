"""A dark theme: images are judged against a neutral dark surround, as in every paint program."""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

ACCENT = "#4c8dff"
WARNING = "#f0b43c"
ERROR = "#ff6b6b"
OK = "#45b38a"
MUTED = "#9aa0a8"

_COLORS = {
    QPalette.ColorRole.Window: "#1e1f22",
    QPalette.ColorRole.WindowText: "#e6e6e6",
    QPalette.ColorRole.Base: "#16171a",
    QPalette.ColorRole.AlternateBase: "#222428",
    QPalette.ColorRole.ToolTipBase: "#2b2d31",
    QPalette.ColorRole.ToolTipText: "#e6e6e6",
    QPalette.ColorRole.PlaceholderText: "#6f747c",
    QPalette.ColorRole.Text: "#e6e6e6",
    QPalette.ColorRole.Button: "#2b2d31",
    QPalette.ColorRole.ButtonText: "#e6e6e6",
    QPalette.ColorRole.BrightText: "#ffffff",
    QPalette.ColorRole.Highlight: ACCENT,
    QPalette.ColorRole.HighlightedText: "#ffffff",
    QPalette.ColorRole.Link: ACCENT,
}

STYLE_SHEET = f"""
QToolTip {{ border: 1px solid #3a3d42; padding: 4px; }}
QGroupBox {{ border: 1px solid #33363b; border-radius: 6px; margin-top: 14px; padding: 8px 6px 6px 6px; }}
QGroupBox::title {{ subcontrol-origin: margin; left: 8px; padding: 0 4px; color: {MUTED}; }}
QPlainTextEdit, QLineEdit {{ border: 1px solid #3a3d42; border-radius: 4px; padding: 3px; background: #16171a; }}
QPlainTextEdit:focus, QLineEdit:focus {{ border-color: {ACCENT}; }}
QPushButton {{ border: 1px solid #3f4248; border-radius: 4px; padding: 5px 12px; background: #2b2d31; }}
QPushButton:hover {{ background: #34373c; }}
QPushButton:disabled {{ color: #6f747c; }}
QPushButton#generate {{ background: {ACCENT}; border-color: {ACCENT}; color: white; font-weight: 600; }}
QPushButton#generate:disabled {{ background: #2f4a78; border-color: #2f4a78; color: #b8c4d8; }}
QFrame#tile {{ background: #25272b; border: 1px solid #33363b; border-radius: 8px; }}
QFrame#tile[selected="true"] {{ border: 2px solid {ACCENT}; }}
QLabel#tileTitle {{ font-weight: 600; }}
QLabel#tileTotal {{ font-weight: 600; color: #ffffff; background: #2f4a78; border-radius: 8px; padding: 1px 7px; }}
QLabel#tileCaption {{ color: {MUTED}; }}
QLabel#tileWarning {{ color: {WARNING}; font-size: 11px; }}
QLabel#modeWarning {{ color: {WARNING}; }}
QLabel#modeHint {{ color: {MUTED}; }}
QLabel#banner {{ border-radius: 6px; padding: 8px 10px; }}
QLabel#banner[level="info"] {{ background: #1f3350; color: #d6e4ff; }}
QLabel#banner[level="warning"] {{ background: #4a3a14; color: #ffe2a6; }}
QLabel#banner[level="error"] {{ background: #4d1f22; color: #ffd0d0; }}
QLabel#modelNote {{ background: #2a2616; color: #f3dc9a; border-radius: 6px; padding: 8px; }}
QProgressBar {{ border: none; background: #33363b; border-radius: 2px; max-height: 4px; }}
QProgressBar::chunk {{ background: {ACCENT}; border-radius: 2px; }}
QListWidget {{ border: 1px solid #33363b; border-radius: 6px; }}
QListWidget::item {{ padding: 4px; }}
QListWidget::item:selected {{ background: #2f4a78; }}
"""


def apply_theme(app: QApplication) -> None:
    app.setStyle("Fusion")
    palette = QPalette()
    for role, color in _COLORS.items():
        palette.setColor(role, QColor(color))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor("#6f747c"))
    app.setPalette(palette)
    app.setStyleSheet(STYLE_SHEET)

"""Fewstep's desktop application (PySide6).

Nothing in this package imports torch, diffusers or transformers at module level: the engine loads
inside the worker thread, after the window is on screen. Importing this package itself imports
nothing, so `fewstep compare ...` runs without Qt.
"""

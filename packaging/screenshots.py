"""Screenshots for the README: the main window after a real four-seed comparison with its trilemma
panel, the large view's difference heat map and wipe, and the settings dialog.

Runs the real application on the built-in model (built into a temporary cache on first use), under
Qt's offscreen platform unless a display is available. Settings and output go to temporary folders:
the developer's own are never touched.

    .venv/bin/python packaging/screenshots.py [--out docs/screenshots]
    .venv/bin/python packaging/screenshots.py --modes ddim,ays,lcm,lcm-lora,lightning,lightning-lora,tcd,pcm-lora \
        --main-only --main-name field-window.png --size 2040x1900

``--modes``: the modes to compare (default: the window's own first choice); ``--main-only``: the
main window alone.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# A sentence of the built-in pocket model's grammar (engine/pocket/grammar.py).
PROMPT = "a large yellow triangle on a purple background, bottom right"
NEGATIVE = ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    parser.add_argument("--seeds", type=int, default=4, help="rows of the grid")
    parser.add_argument("--modes", help="comma-separated modes to compare (default: the window's choice)")
    parser.add_argument("--main-only", action="store_true", help="only the main window's screenshot")
    parser.add_argument("--main-name", default="main-window.png")
    parser.add_argument("--size", default="1600x1720", help="the main window's WIDTHxHEIGHT")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="fewstep-shots-"))
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["FEWSTEP_SETTINGS"] = str(scratch / "settings.json")
    os.environ.setdefault("FEWSTEP_CACHE_DIR", str(scratch / "cache"))
    os.environ.setdefault("FEWSTEP_THREADS", "1")
    sys.path.insert(0, str(REPO))

    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from engine.contract.modes import ModelRole
    from gui.app import create_window
    from gui.state.jobs import EventKind, WorkerEvent
    from gui.state.settings import Settings, save_settings
    from gui.widgets.settings_dialog import SettingsDialog

    save_settings(Settings(output_dir=scratch / "out"))
    app = QApplication([sys.argv[0]])
    window = create_window(app)
    width, height = (int(n) for n in args.size.split("x"))
    window.resize(width, height)
    window.show()
    window.start()

    def wait_for(kind: EventKind, seconds: float) -> None:
        """Until the worker reports an event of this kind, or seconds pass."""
        loop = QEventLoop()

        def quit_on(event: WorkerEvent) -> None:
            if event.kind is kind:
                loop.quit()

        window.worker.reported.connect(quit_on)
        QTimer.singleShot(int(seconds * 1000), loop.quit)
        loop.exec()
        window.worker.reported.disconnect(quit_on)

    wait_for(EventKind.ENGINE_READY, 180)
    if window.engine_info is None:
        print("the engine did not load", file=sys.stderr)
        return 1
    window.prompt_panel.prompt.setPlainText(PROMPT)
    window.prompt_panel.negative.setPlainText(NEGATIVE)
    window.prompt_panel.seed_count.setValue(args.seeds)
    if args.modes:
        modes = [m.strip() for m in args.modes.split(",") if m.strip()]
        unavailable = [m for m in modes if m not in window.mode_panel.available_modes()]
        if unavailable:
            print(f"not available on the built-in model: {', '.join(unavailable)}", file=sys.stderr)
            return 1
        window.mode_panel.set_checked(modes)
        # The trilemma table shows five modes at its first height: a row more per mode beyond five.
        splitter = window.center.splitter
        total = sum(splitter.sizes())
        table_height = 215 + 26 * max(0, len(modes) - 5)
        splitter.setSizes([total - table_height, table_height])
    # One setting outside its mode's contract, so that the picture shows how Fewstep says so.
    window.mode_panel.apply("lightning-lora", steps=8, guidance=None)
    window.generate()
    wait_for(EventKind.FINISHED, 300)
    # The trilemma is measured on its own thread: wait until every tile is in the table.
    tiles = len(window.grid.tiles)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        app.processEvents()
        table = window.trilemma_panel.trilemma
        if table is not None and sum(row.images for row in table.rows) == tiles:
            break
        time.sleep(0.05)
    # The finished run's history entry is read back off the GUI thread after FINISHED: wait for it,
    # or the picture shows an empty history list.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and window.history.list.count() == 0:
        app.processEvents()
        time.sleep(0.05)
    window.grid.select(1)
    app.processEvents()
    args.out.mkdir(parents=True, exist_ok=True)
    main_shot = args.out / args.main_name
    window.grab().save(str(main_shot))
    if args.main_only:
        window.close()
        print(f"wrote {main_shot}")
        return 0

    # The large view: the LCM UNet's first-seed tile against the DDIM reference of the same seed.
    from gui.widgets.image_view import Form

    window.open_tile(1)
    viewer = window.viewer
    viewer.resize(640, 760)
    viewer.set_form(Form.DIFFERENCE)
    app.processEvents()
    difference_shot = args.out / "difference-view.png"
    viewer.grab().save(str(difference_shot))
    viewer.set_form(Form.WIPE)
    viewer.slider.setValue(700)  # through the shape, which the prompt puts bottom right
    app.processEvents()
    wipe_shot = args.out / "wipe-view.png"
    viewer.grab().save(str(wipe_shot))
    viewer.close()

    dialog = SettingsDialog(window.settings, window)
    # Real paths show the on-the-spot checks: the built-in model's base and Lightning LoRA.
    from engine.pocket.model import builtin_model_paths

    builtin = builtin_model_paths()
    dialog.rows[ModelRole.BASE].edit.setText(str(builtin.base))
    dialog.rows[ModelRole.LIGHTNING_LORA].edit.setText(str(builtin.lightning_lora))
    dialog.resize(720, dialog.sizeHint().height())
    dialog.show()
    deadline = time.monotonic() + 30
    while dialog.checking() and time.monotonic() < deadline:  # the checks answer off the GUI thread
        app.processEvents()
        time.sleep(0.01)
    app.processEvents()
    settings_shot = args.out / "settings-dialog.png"
    dialog.grab().save(str(settings_shot))
    dialog.close()
    window.close()
    print(f"wrote {main_shot}, {difference_shot}, {wipe_shot} and {settings_shot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

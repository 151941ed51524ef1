"""The pocket model's grammar, suggested in the prompt box while it is the model in use."""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from engine.pocket.grammar import parse
from gui.widgets.prompt_panel import PromptPanel


def test_suggestions_are_sentences_of_the_grammar_and_only_for_the_pocket_model(qtbot: QtBot) -> None:
    panel = PromptPanel()
    qtbot.addWidget(panel)
    assert panel.suggest.isHidden()
    panel.set_pocket_grammar(True)
    assert not panel.suggest.isHidden()
    assert "large red circle" in panel.prompt.placeholderText()
    seen = set()
    for _ in range(30):
        panel.suggest.click()
        text = panel.prompt.toPlainText()
        parsed = parse(text)  # raises for anything outside the grammar
        assert parsed.color != parsed.background
        seen.add(text)
    assert len(seen) > 10
    panel.set_pocket_grammar(False)
    assert panel.suggest.isHidden()

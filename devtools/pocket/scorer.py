"""The pocket scorer, now in engine.pocket.scorer: `fewstep bench` measures prompt adherence with it on
the built-in model. Kept here so that the training and evaluation tools import it as before."""

from engine.pocket.scorer import Detection, Score, Summary, detect, score, summarize

__all__ = ["Detection", "Score", "Summary", "detect", "score", "summarize"]

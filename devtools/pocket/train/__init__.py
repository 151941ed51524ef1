"""Training recipes of the pocket model, each runnable as ``python -m devtools.pocket.train.<recipe>``.

Every recipe runs on one torch thread, checkpoints to its output folder every few minutes and resumes
from the checkpoint it finds there, so a run can be stopped and continued across sessions.
"""

"""Errors that reach the user as one clear line."""


class FewstepError(Exception):
    """Something the user can fix: the message says what is wrong and what to do."""


class ModelInputError(FewstepError):
    """A model path is missing, unreadable or of the wrong kind for its option."""


class RequestError(FewstepError):
    """A request that cannot run: unknown mode, bad size, steps below 1, a mode without its file."""


class JobCancelled(Exception):  # noqa: N818 - a signal, not an error
    """Raised inside the denoising loop when the job's cancel flag is set."""

"""The application's state and work, without widgets: the worker thread, jobs, live mode, settings, the image store and the model controller."""

"""Training, evaluating and exporting the pocket model (never shipped; the product reads only its exported files)."""

"""The files Fewstep ships (package data): the SDXL config folder, the pocket model and the icons."""

"""The pocket model: a tiny SDXL-architecture model trained by the project on procedural shapes.

``grammar`` makes and parses prompts, ``shapes`` draws the 64x64 images they describe, ``scorer``
checks a picture against its prompt, ``train`` holds the recipes and ``export`` writes the shipped
files in the layouts of their real counterparts.
"""

"""The built-in pocket model: its prompt grammar (grammar.py) and its shipped files and names (model.py).

Both torch-free: the GUI's prompt suggestions and model set-up use them before the engine loads. The
files are in resources/pocket/; training and export live in devtools.pocket.
"""

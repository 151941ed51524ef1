"""The pocket model's prompt grammar (torch-free): the GUI's prompt suggestions and the developer tools share it.

The shipped files are found by engine.files.pocket; training and export live in devtools.pocket.
"""

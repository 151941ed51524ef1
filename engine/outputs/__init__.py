"""What a run leaves behind: atomic writes, PNGs with their AUTOMATIC1111 text, the grid and the report."""

"""Developer tools, never shipped: tiny-model and fixture writers in the real file layouts, the SDXL config folder writer, and the pocket model's training, evaluation and export."""

"""Model files on disk: what a path is (from its header, without loading weights), the Hugging Face cache, and the shipped resources."""

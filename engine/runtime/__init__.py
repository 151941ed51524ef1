"""The torch runtime: the engine that owns every model, loading, style LoRAs, device choice and previews."""

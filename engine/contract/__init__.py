"""The torch-free contract between a front end and the engine: modes, requests and results, errors, limits and the residency plan. Imports nothing heavy."""

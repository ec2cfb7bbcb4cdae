"""livetranslate: real-time speech transcription and translation served by Triton."""

__version__ = "0.1.0"

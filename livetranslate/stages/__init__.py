"""The stages as plain Python, without Triton: VAD, Whisper, the LLM, translation,
completeness and the enhanced translation."""

"""TensorRT-LLM engine builds for the gpu profile (Whisper large-v3, LLaMA 3.1 8B Instruct)."""

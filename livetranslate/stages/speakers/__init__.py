"""Who is speaking: a speaker encoder (Resemblyzer's GE2E in numpy, no torch) and the online
clustering of its utterance embeddings into per-stream speaker labels (S1, S2, ...)."""

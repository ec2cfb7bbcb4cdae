"""What readers see: the terminal view, captions, subtitles and export formats."""

"""Measuring the text: evaluation against references and the sample recordings."""

"""`python -m livetranslate.cli`: the `livetranslate` command."""

from livetranslate.cli import main

main()

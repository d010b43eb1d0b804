"""``python -m xieshang.adapters.cli``: the console script."""

from . import main

main()

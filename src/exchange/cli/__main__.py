"""``python -m exchange.cli``: how the exchange starts its own child processes."""

from exchange.cli import main

main()

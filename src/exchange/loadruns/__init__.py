"""Load runs reported to the exchange, so the operations dashboard shows a day in progress."""

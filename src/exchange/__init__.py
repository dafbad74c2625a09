"""exchange: a simulator of a municipal government information-sharing exchange."""

__version__ = "0.1.0"

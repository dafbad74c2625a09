"""Load tests of the exchange on Locust: a day of the Guangzhou platform (see README.md)."""

"""Member units (接入单位): the departments registered on the exchange, and their keys."""

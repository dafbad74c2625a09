"""The exchange broker (共享交换): authenticate, check the grant, route, filter, audit, answer."""

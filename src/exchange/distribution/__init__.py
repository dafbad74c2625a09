"""Automatic distribution (自动分发): providers' change events, subscriptions, delivery."""

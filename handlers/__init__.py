"""Inbound chat surfaces: thin adapters that parse, call bot.service, and render."""

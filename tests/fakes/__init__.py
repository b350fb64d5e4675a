"""Test doubles that fake external services at the HTTP boundary."""

"""Prompt templates as text files, loaded by name."""

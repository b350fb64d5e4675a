"""Outbound clients: the only home of vendor SDKs (tweepy, slack_sdk, openai, botbuilder)."""

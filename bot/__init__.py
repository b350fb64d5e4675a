"""socialcare: social customer care inside chat. The domain package (no vendor SDKs here)."""

__version__ = "0.1.0"

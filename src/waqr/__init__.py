"""waqr: a self-hosted WhatsApp linking gateway."""

__version__ = "0.1.0"

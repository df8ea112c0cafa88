"""The internal linking service (``waqr bot``): sessions, their persistence, their HTTP API."""

"""identity: the platform's OAuth 2.1 / OpenID Connect provider."""

__version__ = "0.1.0"

"""Territory Service: the single source of truth for who owns each CRM customer."""

__version__ = "0.1.0"

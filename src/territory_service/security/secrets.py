"""API key secrets: generated with 256 bits of entropy, recognisable, stored only as a hash."""

from __future__ import annotations

import hashlib
import secrets

KEY_PREFIX = "tsk_"
# What lists show so people can tell keys apart: the prefix and the first characters.
DISPLAY_LENGTH = len(KEY_PREFIX) + 8


def generate_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """SHA-256 is enough here: the secret is random, so there is nothing to brute-force."""
    return hashlib.sha256(secret.encode()).hexdigest()


def display_prefix(secret: str) -> str:
    return secret[:DISPLAY_LENGTH]


def looks_like_key(candidate: str) -> bool:
    return candidate.startswith(KEY_PREFIX) and 20 <= len(candidate) <= 100

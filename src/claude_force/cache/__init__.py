"""The response cache: signed SQLite store, bounded memory tier, keys and secret handling."""

from claude_force.cache.core import CacheStats, ResponseCache, VerifyReport
from claude_force.cache.keys import cache_key
from claude_force.cache.secret import resolve_secret

__all__ = ["CacheStats", "ResponseCache", "VerifyReport", "cache_key", "resolve_secret"]

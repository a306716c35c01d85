"""Every built-in default of claude-force, in one place.

Settings resolve as: CLI flag > environment (``CLAUDE_FORCE_*``) > config ``orchestrator`` block > these values.
"""

from __future__ import annotations

from typing import Final

#: A current Sonnet, as listed in ``anthropic.types.Model``.
DEFAULT_MODEL: Final = "claude-sonnet-5-5"
DEFAULT_MAX_TOKENS: Final = 1024
DEFAULT_MAX_CONCURRENCY: Final = 10
#: Timeout of one HTTP attempt, in seconds.
DEFAULT_TIMEOUT_SECONDS: Final = 60.0
#: Overall deadline of one task across all its attempts, in seconds.
DEFAULT_DEADLINE_SECONDS: Final = 300.0
DEFAULT_TRANSPORT: Final = "native"
DEFAULT_BASE_URL: Final = "https://api.anthropic.com"
ANTHROPIC_VERSION: Final = "2023-06-01"
DEFAULT_CONFIG_PATH: Final = ".claude/claude.json"

# Input limits.
DEFAULT_MAX_FILE_BYTES: Final = 1024 * 1024
DEFAULT_MAX_CONFIG_BYTES: Final = 1024 * 1024
DEFAULT_MAX_TASK_CHARS: Final = 400_000
DEFAULT_MAX_TASK_TOKENS: Final = 150_000
DEFAULT_MAX_RESPONSE_BYTES: Final = 16 * 1024 * 1024
DEFAULT_MAX_BATCH_LINE_BYTES: Final = 1024 * 1024
DEFAULT_MAX_TASKS_PER_CALL: Final = 1_000_000
AGENT_NAME_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"

# Retry.
DEFAULT_MAX_ATTEMPTS: Final = 8
DEFAULT_BACKOFF_BASE_SECONDS: Final = 0.5
DEFAULT_BACKOFF_MAX_SECONDS: Final = 8.0
DEFAULT_RETRY_AFTER_CAP_SECONDS: Final = 60.0

# Circuit breaker.
DEFAULT_BREAKER_CONSECUTIVE_FAILURES: Final = 20
DEFAULT_BREAKER_FAILURE_RATE: Final = 0.8
DEFAULT_BREAKER_WINDOW: Final = 50
DEFAULT_BREAKER_COOLDOWN_SECONDS: Final = 10.0

# Response cache.
DEFAULT_CACHE_TTL_HOURS: Final = 24.0
DEFAULT_CACHE_MAX_MEMORY_MB: Final = 64.0
DEFAULT_CACHE_MAX_DISK_MB: Final = 1024.0
DEFAULT_CACHE_MAX_ENTRY_BYTES: Final = 5 * 1024 * 1024
MIN_SECRET_BYTES: Final = 32

# Prompt caching ("5m", "1h", or None for off).
DEFAULT_PROMPT_CACHE_TTL: Final = "5m"

# Injection screening: "off" | "flag" | "block".
DEFAULT_INJECTION_POLICY: Final = "flag"

# Tracker.
DEFAULT_TRACKER_RING_SIZE: Final = 10_000

"""Offline generators of realistic device traffic (receipts, status replies) for tests, benchmarks and the
bundled sample captures in ``sessions/``. Nothing here touches a real device."""

"""What every remote call shares: clocks, the retry policy, traffic shaping, the HTTP client."""

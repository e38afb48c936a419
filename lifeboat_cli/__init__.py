"""The `lifeboat` operator CLI (never packaged into Lambda)."""

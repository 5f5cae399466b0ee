"""The cost detector: spend against the reference, and daily budget burn per service."""

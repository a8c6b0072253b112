"""Enforcement parts the session composes: the quarantine for retained files, the watermark."""

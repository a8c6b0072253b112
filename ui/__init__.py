"""Teller Guard desktop agent (PySide6): tray, prompts, lock overlay."""

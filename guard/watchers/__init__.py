"""Watchers notice something on a channel and hand an Observation to the pipeline; they never
decide. `clipboard.ClipboardWatcher` guards the clipboard, `idle.IdleLock` locks an unattended
PC."""

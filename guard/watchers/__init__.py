"""Watchers notice something on a channel and hand an Observation to the pipeline; they never
decide. `base.Watcher` is what each offers; `clipboard.ClipboardWatcher` guards the clipboard,
`idle.IdleLock` locks an unattended PC."""

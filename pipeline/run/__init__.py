"""Running auditveil: the Beam batch pipeline, its CLI, progress and run summary."""

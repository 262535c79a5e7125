"""The tenchat client: keystore, local cache, relay connection, core, CLI."""

"""The Integra Exchange node: settings, storage, auth, the API app, the CLI."""

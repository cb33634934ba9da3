"""The guest's root image."""

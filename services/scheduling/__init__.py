"""The scheduler and the launcher port it drives."""

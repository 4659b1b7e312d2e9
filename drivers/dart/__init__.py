"""drivers/dart."""

"""Admin API for sync: trigger and watch runs, inspect destinations, repair dead letters (admin token)."""

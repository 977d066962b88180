"""The generic reconciliation framework: resources, state, watches, controllers. Knows nothing of disks."""

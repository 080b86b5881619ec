"""The API's resources, each as a sync and an async class bound to a client."""

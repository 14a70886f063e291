"""Language worker processes: the app's functions run in processes of their own, as the Functions
host runs them (FUNCTIONS_WORKER_PROCESS_COUNT); the host keeps HTTP, the engine and storage."""

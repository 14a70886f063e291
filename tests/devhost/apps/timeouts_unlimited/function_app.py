"""An app with no functionTimeout: an activity that runs until the test lets it go."""

import time
from pathlib import Path

import azure.durable_functions as df

app = df.DFApp()
HOLD_SECONDS = 60


@app.activity_trigger(input_name="folder")
def Hang(folder: str) -> str:
    deadline = time.monotonic() + HOLD_SECONDS
    while not (Path(folder) / "release").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return "released"


@app.orchestration_trigger(context_name="context")
def CallHang(context: df.DurableOrchestrationContext):
    return (yield context.call_activity("Hang", context.get_input()))

"""A v2 app: a timer feeds a queue, whose trigger starts an orchestration that writes a blob."""

import json

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp()
fired: list[str] = []  # the occurrences the timer ran for, for tests to read


@app.timer_trigger(arg_name="timer", schedule="0 0 * * * *")
@app.queue_output(arg_name="work", queue_name="%WORK_QUEUE%", connection="AzureWebJobsStorage")
def hourly(timer: func.TimerRequest, work: func.Out[str]) -> None:
    """Every hour on the hour, one report to write, named after its hour."""
    fired.append(timer.schedule_status["Next"])
    hour = timer.schedule_status["Next"][:13].replace("T", "-")
    work.set(json.dumps({"report": f"report-{hour}"}))


@app.queue_trigger(arg_name="msg", queue_name="%WORK_QUEUE%", connection="AzureWebJobsStorage")
@app.durable_client_input(client_name="client")
async def start_report(msg: func.QueueMessage, client: df.DurableOrchestrationClient) -> None:
    job = msg.get_json()
    await client.start_new("Report", job["report"], job)


@app.orchestration_trigger(context_name="context")
def Report(context: df.DurableOrchestrationContext):
    job = context.get_input()
    lines = yield context.call_activity("count_rooms", job)
    return (yield context.call_activity("write_report", {**job, "lines": lines}))


@app.activity_trigger(input_name="job")
def count_rooms(job: dict) -> int:
    return 3


@app.activity_trigger(input_name="job")
@app.blob_output(arg_name="out", path="%REPORTS%/{report}.txt", connection="AzureWebJobsStorage")
def write_report(job: dict, out: func.Out[str]) -> str:
    text = f"{job['report']}: {job['lines']} rooms"
    out.set(text)
    return text

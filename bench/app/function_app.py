"""The benchmark's app: the shapes of work the engine benchmark measures."""

from datetime import timedelta

import azure.durable_functions as df

app = df.DFApp()


@app.activity_trigger(input_name="value")
def Step(value: int) -> int:
    return value + 1


@app.orchestration_trigger(context_name="context")
def Chain(context: df.DurableOrchestrationContext):
    value = 0
    for _ in range(int(context.get_input())):
        value = yield context.call_activity("Step", value)
    return value


@app.orchestration_trigger(context_name="context")
def FanOut(context: df.DurableOrchestrationContext):
    count = int(context.get_input())
    results = yield context.task_all([context.call_activity("Step", i) for i in range(count)])
    return len(results)


@app.orchestration_trigger(context_name="context")
def WaitEvent(context: df.DurableOrchestrationContext):
    return (yield context.wait_for_external_event("Go"))


@app.orchestration_trigger(context_name="context")
def Nap(context: df.DurableOrchestrationContext):
    yield context.create_timer(context.current_utc_datetime + timedelta(milliseconds=200))
    return "rested"


@app.entity_trigger(context_name="context")
def Counter(context: df.DurableEntityContext):
    context.set_state(context.get_state(lambda: 0) + context.get_input())

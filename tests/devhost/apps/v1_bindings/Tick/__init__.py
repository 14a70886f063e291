import json

import azure.functions as func


def main(timer: func.TimerRequest, tick: func.Out[str]) -> None:
    tick.set(json.dumps({"past_due": timer.past_due, "next": timer.schedule_status["Next"]}))

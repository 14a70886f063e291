import json
import logging

import azure.functions as func


def main(timer: func.TimerRequest, tick: func.Out[str]) -> None:
    logging.info("tick, past due: %s", timer.past_due)
    tick.set(json.dumps({"past_due": timer.past_due, "next": timer.schedule_status["Next"]}))

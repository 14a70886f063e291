"""A plain FunctionApp with a Durable Functions Blueprint registered, and a sibling module."""

import azure.functions as func
from bp_workflows import bp

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(bp)

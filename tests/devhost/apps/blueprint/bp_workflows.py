import azure.durable_functions as df
import azure.functions as func
from bp_words import greeting

bp = df.Blueprint()


@bp.route(route="hello/{name}", methods=["GET"], auth_level=func.AuthLevel.ADMIN)
@bp.durable_client_input(client_name="client")
async def hello_start(req: func.HttpRequest, client):
    instance_id = await client.start_new("greet", None, req.route_params["name"])
    return client.create_check_status_response(req, instance_id)


@bp.orchestration_trigger(context_name="context")
def greet(context):
    return (yield context.call_activity("say", context.get_input()))


@bp.activity_trigger(input_name="name")
def say(name: str) -> str:
    return greeting(name)

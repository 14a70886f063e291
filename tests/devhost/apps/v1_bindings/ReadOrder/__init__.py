import json

import azure.functions as func


def main(
    req: func.HttpRequest, order: str, everything: str, receipt: func.InputStream
) -> func.HttpResponse:
    if order is None:
        return func.HttpResponse("no such order", status_code=404)
    body = {
        "order": json.loads(order),
        "count": len(json.loads(everything)),
        "receipt": receipt.read().decode(),
    }
    return func.HttpResponse(json.dumps(body), mimetype="application/json")

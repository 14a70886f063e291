"""The OpenAPI description stays in step with the app's HTTP routes."""

import re


def test_openapi_describes_exactly_the_routes_of_the_app(game):
    code, _, spec = game.get("openapi.json")
    assert code == 200 and spec["openapi"].startswith("3.")
    described = {
        (path.lstrip("/"), method.upper())
        for path, operations in spec["paths"].items()
        for method in operations
    }
    routes = set()
    for function in game.host.functions.http.values():
        route = re.sub(r"\{(\w+)(:[^}]*)?\??\}", r"{\1}", function.route)
        for method in function.methods or ["GET"]:
            routes.add((route, method))
    assert described == routes
    for path, operations in spec["paths"].items():
        for operation in operations.values():
            names = {p["name"] for p in operation.get("parameters", [])}
            assert names == set(re.findall(r"\{(\w+)\}", path)), path

# What moto lacks of the AWS APIs wsstack calls, added before the server starts: the launcher
# puts this file, as sitecustomize.py, first on the server's PYTHONPATH, and Python imports it at
# start-up. Without moto (a wrapper's own Python, say) it adds nothing.
import json

try:
    from moto.apigatewayv2.responses import ApiGatewayV2Response
except ImportError:
    ApiGatewayV2Response = None


def get_route_responses(self):
    # GET /v2/apis/{apiId}/routes/{routeId}/routeresponses: moto stores route responses
    # (CreateRouteResponse, GetRouteResponse) but cannot list them. One page: no NextToken.
    parts = self.path.split("?")[0].rstrip("/").split("/")
    api_id, route_id = parts[-4], parts[-2]
    route = self.apigatewayv2_backend.get_route(api_id, route_id)
    items = [response.to_json() for response in route.route_responses.values()]
    return 200, {}, json.dumps({"items": items})


if ApiGatewayV2Response is not None:
    ApiGatewayV2Response.get_route_responses = get_route_responses
